/**
 * Runs a Vagrantfile under Ruby with vagrant/recorder.rb, which records its
 * configuration calls, and returns the record checked by its schema. A Vagrantfile is
 * code, and this runs it exactly as `vagrant up` would (same user, same environment, its
 * own directory as the working directory), bounded by a time limit.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, ExternalCommandError, lastLines } from '../errors.js';
import { run } from '../exec.js';
import { formatIssues } from '../vmfile/config.js';
import { recordSchema, type VagrantRecord } from './record.js';

/** A Vagrantfile that takes longer than this to evaluate is stopped (they take well under a second). */
export const RECORD_TIMEOUT_MS = 30_000;

/** Deeper records are refused before the (recursive) schema sees them; real ones nest about 10 levels. */
const MAX_DEPTH = 64;

/** Exit status recorder.rb gives when the Vagrantfile raised. */
const RAISED = 3;

export function recorderScript(): string {
  // Same relative place from src/vagrant and dist/vagrant.
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'vagrant', 'recorder.rb');
}

export async function recordVagrantfile(vagrantfile: string, options: { env?: Record<string, string>; signal?: AbortSignal; timeoutMs?: number } = {}): Promise<VagrantRecord> {
  const hint = `fix ${vagrantfile} so that Ruby runs it (vagrant validate shows the same), then run vmfile init --from again`;
  let stdout: string;
  try {
    const result = await run('ruby', [recorderScript(), vagrantfile], {
      cwd: dirname(vagrantfile),
      timeout: options.timeoutMs ?? RECORD_TIMEOUT_MS,
      allowExitCodes: [RAISED],
      purpose: `evaluate ${vagrantfile}`,
      ...(options.env === undefined ? {} : { env: options.env }),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
    if (result.exitCode === RAISED) throw new ConfigError(`${vagrantfile}: Ruby stopped while running it:\n${lastLines(result.stderr, 10)}`, { hint });
    stdout = result.stdout;
  } catch (error) {
    if (!(error instanceof ExternalCommandError) || error.message.endsWith('is not installed') || error.message.endsWith('cancelled')) throw error;
    const why = error.message.endsWith('timed out') ? `did not finish within ${(options.timeoutMs ?? RECORD_TIMEOUT_MS) / 1000} s` : `made Ruby fail (${error.message})`;
    throw new ConfigError(`${vagrantfile} ${why}${error.stderr.trim() === '' ? '' : `:\n${lastLines(error.stderr, 10)}`}`, { hint, cause: error });
  }
  let value: unknown;
  try {
    value = JSON.parse(stdout);
  } catch {
    throw new ConfigError(`${vagrantfile}: evaluating it gave no configuration record (did it exit early or write to the recorder's output?)`, { hint });
  }
  if (depth(value) > MAX_DEPTH) throw new ConfigError(`${vagrantfile}: its configuration nests values more than ${MAX_DEPTH} levels deep, which vmfile does not read`, { hint });
  const parsed = recordSchema.safeParse(value);
  if (!parsed.success) throw new ConfigError(`${vagrantfile}: the record of its configuration is not one vmfile reads:\n${formatIssues(parsed.error.issues).join("\n")}`, { hint });
  return parsed.data;
}

/** How deeply arrays and objects nest in a JSON value, counted without recursion. */
function depth(value: unknown): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [item, level] = stack.pop() ?? [undefined, 0];
    if (item === null || typeof item !== 'object') continue;
    deepest = Math.max(deepest, level + 1);
    if (deepest > MAX_DEPTH) return deepest;
    for (const child of Object.values(item)) stack.push([child, level + 1]);
  }
  return deepest;
}

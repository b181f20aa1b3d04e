/**
 * `vmfile status`'s quick path: `vmfile status [MACHINE...] [--json]` runs the status
 * service and prints what the full command prints, without loading oclif, which was
 * a third of the command's time. Any other form (another flag, --help) answers
 * undefined at once, and so does any failure: the full command then runs with its own
 * parsing and messages. A failure vmfile expects (a Vmfile that does not load, an
 * unknown machine) is printed here as the full command prints it; any other (a bug)
 * leaves it to the full command, which reports it as one. Status changes nothing, so
 * running it again is safe.
 */
import { describeFailure, VmfileError } from '../errors.js';
import { loadProject } from '../project/load.js';
import { status } from '../services/status.js';
import { MACHINE_NAME_PATTERN } from '../vmfile/names.js';
import { statusLines } from './status-lines.js';

/** The machine names and --json of the forms the quick path takes, or undefined for any other. */
export function quickStatusForm(argv: readonly string[]): { machines: string[]; json: boolean } | undefined {
  const machines: string[] = [];
  let json = false;
  for (const arg of argv) {
    if (arg === '--json') json = true;
    else if (MACHINE_NAME_PATTERN.test(arg)) machines.push(arg);
    else return undefined;
  }
  return { machines, json };
}

/** Prints the status and resolves 0, or resolves undefined when the full command must run. */
export async function quickStatus(argv: readonly string[], cwd = process.cwd()): Promise<number | undefined> {
  const form = quickStatusForm(argv);
  if (form === undefined) return undefined;
  try {
    const entries = await status({ project: await loadProject({ cwd }), machines: form.machines });
    process.stdout.write(`${form.json ? JSON.stringify(entries, null, 2) : statusLines(entries).join('\n')}\n`);
    return 0;
  } catch (error) {
    if (!(error instanceof VmfileError)) return undefined;
    const failure = describeFailure(error, process.env['VMFILE_DEBUG'] === '1');
    process.stderr.write(`${failure.text}\n`);
    return failure.exitCode;
  }
}

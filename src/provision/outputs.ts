/**
 * A step's declared outputs, hashed in the guest after it runs. The patterns are guest
 * paths or globs from the Vmfile; they reach the guest as arguments of a fixed script
 * (quoted one by one, ssh/quote.ts), and the script expands each with bash's globbing
 * alone (`for f in $pattern` with IFS empty: no word splitting, and an expansion's result
 * is never run), with `**` matching across directories. It runs as root, as steps do by
 * default, so that files a step wrote as root are read. Every match is printed as
 * `INDEX NUL SHA256 NUL PATH NUL`, so any file name reads back exactly.
 */
import { GuestError } from '../errors.js';
import type { SshSession } from '../ssh/client.js';
import { shellCommand } from '../ssh/quote.js';

export const OUTPUTS_SCRIPT = [
  'shopt -s nullglob globstar dotglob',
  'IFS=',
  'index=0',
  'for pattern in "$@"; do',
  '  for file in $pattern; do',
  '    if [ -f "$file" ]; then digest=$(sha256sum < "$file") || exit 3; printf "%s\\0%s\\0%s\\0" "$index" "${digest%% *}" "$file"; fi',
  '  done',
  '  index=$((index + 1))',
  'done',
].join('\n');

/** The guest command that hashes what `patterns` match (absolute paths or globs). */
export function outputsCommand(patterns: readonly string[]): string {
  return shellCommand(['sudo', '-n', 'bash', '-c', OUTPUTS_SCRIPT, 'vmfile-outputs', ...patterns]);
}

export interface OutputFile {
  path: string;
  sha256: string;
}

/** Parses the script's output: the files each pattern matched, in the order bash gave them (sorted). */
export function parseOutputs(stdout: string, patterns: readonly string[]): OutputFile[][] {
  const matched: OutputFile[][] = patterns.map(() => []);
  const fields = stdout.split('\0');
  for (let at = 0; at + 2 < fields.length; at += 3) {
    const [index, sha256, path] = [fields[at], fields[at + 1], fields[at + 2]];
    const files = matched[Number(index)];
    if (files === undefined || sha256 === undefined || !/^[0-9a-f]{64}$/.test(sha256) || path === undefined || !path.startsWith('/')) {
      throw new GuestError(`the guest's list of output digests is not in the expected form (near field ${at})`);
    }
    files.push({ path, sha256 });
  }
  return matched;
}

/**
 * The digests of the files `patterns` match in the guest, by path. A pattern that matches
 * no file is named in the error: a declared output the step did not make is its failure.
 */
export async function hashOutputs(session: SshSession, patterns: readonly string[], where: string): Promise<Record<string, string>> {
  const result = await session.capture(outputsCommand(patterns));
  if (result.code !== 0) throw new GuestError(`${where}: could not hash the step's outputs in the guest (exit ${result.code}): ${result.stderr.trim().slice(0, 500)}`);
  const matched = parseOutputs(result.stdout, patterns);
  const missing = patterns.filter((_, index) => (matched[index] ?? []).length === 0);
  if (missing.length > 0) {
    throw new GuestError(`${where}: ${missing.length === 1 ? 'the declared output' : 'the declared outputs'} ${missing.map((pattern) => `"${pattern}"`).join(', ')} matched no file in the guest`, {
      hint: 'the step did not make what it declares in outputs; check the paths (relative ones are under the project folder, /vmfile by default)',
    });
  }
  return Object.fromEntries(matched.flat().map((file) => [file.path, file.sha256]).sort(([a], [b]) => ((a ?? '') < (b ?? '') ? -1 : 1)));
}

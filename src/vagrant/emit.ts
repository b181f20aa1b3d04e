/**
 * The Vmfile.ts text of a conversion: a header saying where it came from, which
 * environment variables the Vagrantfile read and the values it was made with (they are
 * written into the Vmfile as values: what a value fed through Ruby's arithmetic and
 * loops became cannot be written back as a read of process.env, and a Vmfile that pins
 * its machines should not change with whoever runs vmup), and how many settings did not
 * convert; then the Vmfile. Pure.
 */
import type { Converted } from './convert.js';
import type { EnvRead } from './record.js';
import { commentLines, render } from './source.js';

export function vmfileSource(converted: Converted, env: readonly EnvRead[], vagrantfile: string): string {
  const header = [`Converted from ${vagrantfile} by vmfile init --from. vmup creates and boots it; vmfile validate checks it without booting.`];
  const reads = envLines(env);
  if (reads.length > 0) header.push(`The Vagrantfile read these environment variables; the values used are written below as they were:`, ...reads);
  header.push(...converted.fileNotes);
  // The same gap of several machines counts once, as in the summary.
  const distinct = [...new Map(converted.gaps.map((gap) => [`${gap.kind}\0${gap.at}\0${gap.what}`, gap])).values()];
  const dropped = distinct.filter((gap) => gap.kind === 'dropped').length;
  const changed = distinct.length - dropped;
  if (dropped > 0) header.push(`${dropped} ${dropped === 1 ? 'setting' : 'settings'} did not convert: see the NOT CONVERTED comments.`);
  if (changed > 0) header.push(`${changed} converted with a difference: see the CHANGED comments.`);
  return `${header.flatMap((line) => commentLines(line)).join('\n')}\nimport { defineVm } from 'vmfile';\n\nexport default defineVm(${render(converted.root)});\n`;
}

/** One line per variable, first read first: its value, or that it was not set and what was used. */
export function envLines(env: readonly EnvRead[]): string[] {
  const seen = new Map<string, EnvRead>();
  for (const read of env) if (!seen.has(read.name)) seen.set(read.name, read);
  return [...seen.values()].map((read) => {
    const where = read.at === null ? '' : ` (${read.at})`;
    if (read.value !== null) return `  ${read.name}=${JSON.stringify(read.value)}${where}`;
    return `  ${read.name} not set${read.used === null || typeof read.used === 'boolean' ? '' : `, so ${JSON.stringify(read.used)}`}${where}`;
  });
}

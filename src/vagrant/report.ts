/**
 * What a conversion could not carry over, or carried over differently: each item is a
 * comment at its place in the Vmfile and a line of the summary on stderr, so nothing of
 * a Vagrantfile is dropped silently. Pure.
 */
import { showValue, type RecordedCall } from './record.js';
import { note, type Entry } from './source.js';

export interface Gap {
  /** "Vagrantfile:12", or "Vagrantfile" when Ruby gave no line. */
  at: string;
  /** 'dropped': not in the Vmfile at all. 'changed': converted, with a difference said here. */
  kind: 'dropped' | 'changed';
  what: string;
  /** The machine it concerns (undefined: the whole file). */
  machine?: string;
}

/** Collects gaps for one machine (or the file) and makes their comments. */
export class Report {
  constructor(
    readonly gaps: Gap[],
    readonly vagrantfile: string,
    readonly machine?: string,
  ) {}

  forMachine(machine: string): Report {
    return new Report(this.gaps, this.vagrantfile, machine);
  }

  where(call: RecordedCall | undefined): string {
    return call?.at ?? this.vagrantfile;
  }

  /** Records a setting that does not convert; the comment that stands in its place. */
  drop(call: RecordedCall | undefined, what: string): Entry {
    return this.add(call, 'dropped', what);
  }

  /** Records a setting converted with a difference; the comment that goes with it. */
  change(call: RecordedCall | undefined, what: string): Entry {
    return this.add(call, 'changed', what);
  }

  private add(call: RecordedCall | undefined, kind: Gap['kind'], what: string): Entry {
    const at = this.where(call);
    this.gaps.push({ at, kind, what, ...(this.machine === undefined ? {} : { machine: this.machine }) });
    return note(`${kind === 'dropped' ? 'NOT CONVERTED' : 'CHANGED'} (${at}): ${what}`);
  }
}

/** How a call reads in a message: `vb.customize ["modifyvm", "id", "--vram", "16"]`. */
export function showCall(call: RecordedCall, receiver: string): string {
  const target = [receiver, ...call.target].filter((part) => part !== '').join('.');
  const name = call.method.endsWith('=') ? `${call.method.slice(0, -1)} =` : call.method;
  const args = call.args.map((arg) => showValue(arg)).join(', ');
  if (call.method === '[]=') return `${target}[${showValue(call.args[0])}] = ${showValue(call.args[1])}`;
  return `${target === '' ? '' : `${target}.`}${name}${args === '' ? '' : ` ${args}`}${call.blocks === undefined ? '' : ' do ... end'}`;
}

/** The summary printed on stderr: one line per gap, the same gap of several machines once. */
export function summarize(gaps: readonly Gap[], vagrantfile: string): string {
  if (gaps.length === 0) return '';
  const grouped = new Map<string, { gap: Gap; machines: string[] }>();
  for (const gap of gaps) {
    const key = `${gap.kind}\0${gap.at}\0${gap.what}`;
    const found = grouped.get(key) ?? { gap, machines: [] };
    if (gap.machine !== undefined) found.machines.push(gap.machine);
    grouped.set(key, found);
  }
  const dropped = [...grouped.values()].filter(({ gap }) => gap.kind === 'dropped');
  const changed = [...grouped.values()].filter(({ gap }) => gap.kind === 'changed');
  const line = ({ gap, machines }: { gap: Gap; machines: string[] }): string => `  - ${gap.at}${machines.length === 0 ? '' : ` (${machines.length === 1 ? 'machine' : 'machines'} ${machines.join(', ')})`}: ${gap.what}`;
  const parts: string[] = [];
  if (dropped.length > 0) parts.push(`${dropped.length} ${dropped.length === 1 ? 'setting' : 'settings'} of ${vagrantfile} did not convert (each is a NOT CONVERTED comment in the Vmfile):`, ...dropped.map(line));
  if (changed.length > 0) parts.push(`${changed.length} converted with a difference (CHANGED comments):`, ...changed.map(line));
  return parts.join('\n');
}

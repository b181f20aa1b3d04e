/**
 * CPUs and memory from a machine's provider blocks (`config.vm.provider "libvirt" do |lv|
 * lv.memory = 2048 end`). vmfile runs QEMU, so when several providers say different
 * things, the closest wins: qemu, then libvirt, then the others in the file's order; the
 * difference is reported. Every other provider setting (vb.customize, vb.gui, libvirt
 * options, `override`) has no vmfile equivalent and is reported as not converted. Pure.
 */
import { showValue, type RecordedCall, type RubyValue } from './record.js';
import { showCall, type Report } from './report.js';
import type { Entry } from './source.js';

export interface Resources {
  cpus?: { value: number; from: string };
  memoryMiB?: { value: number; from: string };
  /** Comments about the provider blocks, placed after cpus and memory. */
  notes: Entry[];
}

const PREFERENCE = ['qemu', 'libvirt'];

export function providerResources(calls: readonly RecordedCall[], report: Report): Resources {
  const found: { provider: string; cpus?: number; memory?: number; call: RecordedCall }[] = [];
  const notes: Entry[] = [];
  for (const call of calls) {
    const provider = String(call.args[0] ?? '');
    const said: { provider: string; cpus?: number; memory?: number; call: RecordedCall } = { provider, call };
    const options = call.args[1];
    if (options !== undefined) notes.push(report.drop(call, `options of the ${provider} provider: ${showValue(options)}`));
    for (const setting of call.blocks?.[0] ?? []) {
      const read = readSetting(provider, setting);
      if (read === undefined) {
        notes.push(report.drop(setting, `${showCall(setting, short(provider))}: a ${provider} setting vmfile has no equivalent for`));
        continue;
      }
      if (read.cpus !== undefined) said.cpus = read.cpus;
      if (read.memory !== undefined) said.memory = read.memory;
    }
    for (const setting of call.blocks?.[1] ?? []) notes.push(report.drop(setting, `${showCall(setting, '')}: settings that apply only under the ${provider} provider`));
    if (said.cpus !== undefined || said.memory !== undefined) found.push(said);
  }
  const rank = (provider: string): number => {
    const index = PREFERENCE.indexOf(provider);
    return index === -1 ? PREFERENCE.length : index;
  };
  const ordered = [...found].sort((a, b) => rank(a.provider) - rank(b.provider));
  const resources: Resources = { notes };
  for (const key of ['cpus', 'memory'] as const) {
    const chosen = ordered.find((entry) => entry[key] !== undefined);
    if (chosen === undefined) continue;
    const value = chosen[key] ?? 0;
    if (key === 'cpus') resources.cpus = { value, from: chosen.provider };
    else resources.memoryMiB = { value, from: chosen.provider };
    const others = found.filter((entry) => entry[key] !== undefined && entry[key] !== value);
    for (const other of others) {
      notes.push(report.change(other.call, `the ${other.provider} block says ${key} ${other[key]}${key === 'memory' ? ' MB' : ''}; the ${chosen.provider} block's ${value} is used`));
    }
  }
  return resources;
}

function short(provider: string): string {
  return provider === 'virtualbox' ? 'vb' : provider.startsWith('vmware') ? 'v' : provider;
}

/** CPUs or memory (MiB) from one setting, or undefined when it is neither. */
function readSetting(provider: string, call: RecordedCall): { cpus?: number; memory?: number } | undefined {
  const [first, second] = call.args;
  if (call.target.length === 0 && call.method === 'memory=' && call.args.length === 1) return wrap('memory', megabytes(first));
  if (call.target.length === 0 && (call.method === 'cpus=' || (provider === 'qemu' && call.method === 'smp=')) && call.args.length === 1) return wrap('cpus', cpuCount(first));
  if (provider.startsWith('vmware') && call.target.length === 1 && call.target[0] === 'vmx' && call.method === '[]=') {
    if (first === 'memsize') return wrap('memory', megabytes(second));
    if (first === 'numvcpus') return wrap('cpus', cpuCount(second));
  }
  // VirtualBox's own way: vb.customize ["modifyvm", :id, "--memory", "2048", "--cpus", "2"].
  if (provider === 'virtualbox' && call.target.length === 0 && call.method === 'customize' && Array.isArray(first)) {
    const words = first.map(String);
    if (words[0] !== 'modifyvm' || words.length !== 4) return undefined;
    if (words[2] === '--memory') return wrap('memory', megabytes(words[3]));
    if (words[2] === '--cpus') return wrap('cpus', cpuCount(words[3]));
  }
  return undefined;
}

function wrap(key: 'cpus' | 'memory', value: number | undefined): { cpus?: number; memory?: number } | undefined {
  return value === undefined ? undefined : { [key]: value };
}

/** Megabytes as Vagrant's providers take them: 2048, "2048", or vagrant-qemu's "2G" / "512M". */
export function megabytes(value: RubyValue | undefined): number | undefined {
  if (typeof value === 'number') return Number.isInteger(value) && value > 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const match = /^\s*(\d+)\s*([MG])?i?B?\s*$/i.exec(value);
  if (match === null) return undefined;
  const amount = Number(match[1]);
  const mib = match[2]?.toUpperCase() === 'G' ? amount * 1024 : amount;
  return mib > 0 ? mib : undefined;
}

/** A CPU count: 2, "2", or vagrant-qemu's smp "cpus=2,sockets=1". */
function cpuCount(value: RubyValue | undefined): number | undefined {
  const text = typeof value === 'number' ? String(value) : typeof value === 'string' ? value : '';
  const match = /^\s*(?:cpus=)?(\d+)\s*(?:,|$)/.exec(text);
  const count = match === null ? NaN : Number(match[1]);
  return Number.isInteger(count) && count > 0 ? count : undefined;
}

/** A Vmfile size for a number of MiB: "2GiB" when whole gibibytes, else "1536MiB". */
export function sizeText(mib: number): string {
  return mib % 1024 === 0 ? `${mib / 1024}GiB` : `${mib}MiB`;
}

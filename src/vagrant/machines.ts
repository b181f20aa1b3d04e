/**
 * The machines a Vagrantfile describes, each with the calls that make it, in the order
 * Vagrant applies them: the file's own calls (every machine's) first, then those of the
 * machine's `define` block. With no `define`, one machine, "default". Pure.
 */
import { asHash, type RecordedCall, type RubyValue, type VagrantRecord } from './record.js';

export interface VagrantMachine {
  /** The name Vagrant knows it by. */
  vagrantName: string;
  /** A name a Vmfile accepts (lower case, "-" for "_" and "."). */
  name: string;
  options: Record<string, RubyValue>;
  /** The define call (undefined for the one machine of a file without defines). */
  define?: RecordedCall;
  calls: RecordedCall[];
}

export interface Gathered {
  /** false: the file has no define, so the Vmfile is a single machine. */
  multi: boolean;
  machines: VagrantMachine[];
  /** Configuration versions other than "2", which change what every call means. */
  versions: string[];
}

export function isDefine(call: RecordedCall): boolean {
  return call.target.length === 1 && call.target[0] === 'vm' && call.method === 'define';
}

export function gatherMachines(record: VagrantRecord): Gathered {
  const common: RecordedCall[] = [];
  const defined = new Map<string, VagrantMachine>();
  for (const config of record.configs) {
    for (const call of config.events) {
      if (!isDefine(call)) {
        common.push(call);
        continue;
      }
      const vagrantName = String(call.args[0] ?? 'default');
      const machine = defined.get(vagrantName) ?? { vagrantName, name: machineName(vagrantName), options: {}, define: call, calls: [] };
      // A name defined twice is one machine, as in Vagrant: its blocks add up.
      Object.assign(machine.options, asHash(call.args[1]) ?? {});
      machine.calls.push(...(call.blocks?.[0] ?? []));
      defined.set(vagrantName, machine);
    }
  }
  const versions = [...new Set(record.configs.map((config) => config.version))].filter((version) => version !== '2');
  if (defined.size === 0) return { multi: false, machines: [{ vagrantName: 'default', name: 'default', options: {}, calls: common }], versions };
  const machines = [...defined.values()].map((machine) => ({ ...machine, calls: [...common, ...machine.calls] }));
  return { multi: true, machines: uniqueNames(machines), versions };
}

/** A Vmfile machine name for a Vagrant one: "Web_1" is "web-1". */
export function machineName(vagrantName: string): string {
  const name = vagrantName
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^[^a-z]+/, '')
    .replace(/-+$/, '')
    .slice(0, 63);
  return name === '' ? 'machine' : name;
}

/** Two Vagrant names that become one Vmfile name get -2, -3... */
function uniqueNames(machines: VagrantMachine[]): VagrantMachine[] {
  const taken = new Set<string>();
  return machines.map((machine) => {
    let name = machine.name;
    for (let n = 2; taken.has(name); n += 1) name = `${machine.name.slice(0, 60)}-${n}`;
    taken.add(name);
    return { ...machine, name };
  });
}

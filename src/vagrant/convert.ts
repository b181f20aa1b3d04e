/**
 * A recorded Vagrantfile (record.ts) as a Vmfile: the tree of its source (source.ts)
 * and every gap (report.ts). Machines are gathered as Vagrant applies their calls
 * (machines.ts), each converted whole; what every machine says alike moves to
 * `defaults`. Paths in the Vagrantfile are relative to its directory and are rewritten
 * relative to the Vmfile's. Pure.
 */
import { posix } from 'node:path';
import { BOX_NAME_PATTERN } from '../vmfile/box-metadata.js';
import { parseVersionConstraints } from '../vmfile/version.js';
import { convertFolders } from './folders.js';
import { gatherMachines, type VagrantMachine } from './machines.js';
import { convertNetworks } from './network.js';
import { providerResources, sizeText } from './provider.js';
import { convertProvisioners } from './provisioners.js';
import { showValue, type RecordedCall, type RubyValue, type VagrantRecord } from './record.js';
import { Report, showCall, type Gap } from './report.js';
import { array, entry, object, render, value, type Entry, type Node } from './source.js';

export interface ConvertOptions {
  /** The Vagrantfile as messages name it ("Vagrantfile"). */
  vagrantfile: string;
  /** Directory of the Vagrantfile and of the Vmfile, to rewrite relative paths. */
  fromDir: string;
  toDir: string;
  /** Where Vagrant looks up boxes named org/name (VAGRANT_SERVER_URL, default https://vagrantcloud.com). */
  boxServer: string;
}

export interface Converted {
  /** The object given to defineVm. */
  root: Node;
  gaps: Gap[];
  machines: string[];
  /** Comments about the file as a whole, for the Vmfile's header. */
  fileNotes: string[];
}

/** Vagrant's calls a converted machine reads, by name on config.vm. */
const VM_SCALARS = new Set(['box=', 'box_version=', 'box_url=', 'box_download_checksum=', 'box_download_checksum_type=', 'hostname=', 'boot_timeout=']);
const VM_LISTS = new Set(['network', 'synced_folder', 'provision', 'provider']);

export function convertRecord(record: VagrantRecord, options: ConvertOptions): Converted {
  const gaps: Gap[] = [];
  const report = new Report(gaps, options.vagrantfile);
  const gathered = gatherMachines(record);
  const fileNotes: string[] = [];
  for (const version of gathered.versions) fileNotes.push(...report.drop(undefined, `Vagrant.configure("${version}"): only configuration version 2 is converted; its calls are read as version 2`).comments);
  for (const plugin of record.plugins) fileNotes.push(...report.change(undefined, `Vagrant.has_plugin?(${JSON.stringify(plugin)}) was answered false: the file took its branch without the plugin`).comments);
  const names = new Map(gathered.machines.map((m) => [m.vagrantName, m.name]));
  const hostPath = (path: string): string => {
    if (posix.isAbsolute(path)) return path;
    const rebased = posix.relative(options.toDir, posix.resolve(options.fromDir, path));
    return rebased === '' ? '.' : rebased;
  };
  const converted = gathered.machines.map((machine) => ({
    name: machine.name,
    entries: convertMachine(machine, gathered.multi ? report.forMachine(machine.name) : report, { ...options, hostPath, names, multi: gathered.multi }),
  }));
  const machines = converted.map((m) => m.name);
  const [single] = converted;
  if (!gathered.multi && single !== undefined) return { root: object(single.entries), gaps, machines, fileNotes };
  return { root: multiMachine(converted), gaps, machines, fileNotes };
}

interface MachineOptions extends ConvertOptions {
  hostPath: (path: string) => string;
  names: ReadonlyMap<string, string>;
  multi: boolean;
}

function convertMachine(machine: VagrantMachine, report: Report, options: MachineOptions): Entry[] {
  const scalars = new Map<string, RecordedCall>();
  const lists: Record<string, RecordedCall[]> = { network: [], synced_folder: [], provision: [], provider: [] };
  const misc: Entry[] = [];
  if (machine.name !== machine.vagrantName) misc.push(report.change(machine.define, `Vagrant's machine ${JSON.stringify(machine.vagrantName)} is named ${machine.name} (lower case letters, digits and "-")`));
  for (const call of machine.calls) {
    const onVm = call.target.length === 1 && call.target[0] === 'vm';
    if (onVm && VM_SCALARS.has(call.method) && call.args.length === 1) scalars.set(call.method.slice(0, -1), call);
    else if (onVm && VM_LISTS.has(call.method)) lists[call.method]?.push(call);
    else misc.push(report.drop(call, `${showCall(call, 'config')}: no vmfile equivalent`));
  }
  const entries: Entry[] = [entry('box', ...boxNode(scalars, report, options))];
  const resources = providerResources(lists['provider'] ?? [], report);
  if (resources.cpus !== undefined) entries.push(entry('cpus', value(resources.cpus.value)));
  if (resources.memoryMiB !== undefined) {
    const mib = Math.max(resources.memoryMiB.value, 128);
    const small = resources.memoryMiB.value < 128 ? report.change(undefined, `memory ${resources.memoryMiB.value} MB is below vmfile's least, 128MiB`).comments : [];
    entries.push(entry('memory', value(sizeText(mib)), small));
  }
  entries.push(...resources.notes);
  const hostname = hostnameEntry(scalars.get('hostname'), report);
  if (hostname !== undefined) entries.push(hostname);
  const timeout = scalars.get('boot_timeout');
  if (timeout !== undefined) {
    const seconds = timeout.args[0];
    if (typeof seconds === 'number' && seconds > 0 && seconds <= 86400) entries.push(entry('bootTimeout', value(seconds)));
    else entries.push(report.drop(timeout, `boot_timeout ${showValue(seconds)}: expected seconds`));
  }
  if (machine.options['primary'] === true) entries.push(entry('primary', value(true)));
  if (machine.options['autostart'] === false) entries.push(entry('autostart', value(false)));
  for (const [key, v] of Object.entries(machine.options)) {
    if (key !== 'primary' && key !== 'autostart') entries.push(report.drop(machine.define, `define option ${key}: ${showValue(v)}`));
  }
  const networks = convertNetworks(lists['network'] ?? [], report);
  if (networks.ip !== undefined) entries.push(...networks.ip.notes, entry('network', object([entry('ip', value(networks.ip.value))])));
  if (networks.ports.length > 0) entries.push(entry('ports', array(networks.ports)));
  const folders = convertFolders(lists['synced_folder'] ?? [], report, options.hostPath);
  entries.push(entry('folders', array(folders.entries)));
  const steps = convertProvisioners(lists['provision'] ?? [], { report, hostPath: options.hostPath, folders: folders.folders, machineNames: options.names });
  if (steps.length > 0) entries.push(entry('provision', array(steps)));
  return [...entries, ...misc];
}

function boxNode(scalars: ReadonlyMap<string, RecordedCall>, report: Report, options: ConvertOptions): [Node, string[]] {
  const call = scalars.get('box');
  const name = call?.args[0];
  if (typeof name !== 'string' || !BOX_NAME_PATTERN.test(name)) {
    const why = call === undefined ? 'the Vagrantfile names no box (config.vm.box)' : `box ${showValue(name)} is not a box name vmfile accepts`;
    return [value('debian-12'), report.drop(call, `${why}; debian-12, which vmfile builds from Debian's packages, stands in`).comments];
  }
  const comments: string[] = [];
  const fields: Entry[] = [entry('name', value(name))];
  const versionCall = scalars.get('box_version');
  const version = versionCall?.args[0];
  if (typeof version === 'string' && version.trim() !== '' && parseVersionConstraints(version) !== undefined) fields.push(entry('version', value(version)));
  else if (versionCall !== undefined && version !== null) comments.push(...report.drop(versionCall, `box_version ${showValue(version)}: not a version or constraint vmfile reads`).comments);
  const url = boxUrl(name, scalars, report, options, comments);
  if (url !== undefined) fields.push(entry('url', value(url.url)), ...(url.checksum === undefined ? [] : [entry('checksum', value(url.checksum))]));
  return fields.length === 1 ? [value(name), comments] : [object(fields), comments];
}

/** Where vmup fetches the box: box_url, else Vagrant's catalog for org/name; undefined for a plain name. */
function boxUrl(name: string, scalars: ReadonlyMap<string, RecordedCall>, report: Report, options: ConvertOptions, comments: string[]): { url: string; checksum?: string } | undefined {
  const urlCall = scalars.get('box_url');
  const given: RubyValue | undefined = urlCall?.args[0];
  const first = Array.isArray(given) ? given[0] : given;
  if (typeof first === 'string' && /^https?:\/\//i.test(first)) {
    if (Array.isArray(given) && given.length > 1) comments.push(...report.drop(urlCall, `box_url mirrors after the first: ${showValue(given.slice(1))}`).comments);
    if (new URL(first).pathname.endsWith('.json')) return { url: first };
    const sum = scalars.get('box_download_checksum')?.args[0];
    const type = scalars.get('box_download_checksum_type')?.args[0];
    if (typeof sum === 'string' && /^[0-9a-f]{64}$/i.test(sum) && (type === 'sha256' || type === undefined)) return { url: first, checksum: `sha256:${sum.toLowerCase()}` };
    comments.push(...report.drop(urlCall, `box_url ${first}: vmfile downloads a box file only with its sha256 (box_download_checksum); add checksum: 'sha256:...' with url`).comments);
  } else if (urlCall !== undefined) {
    comments.push(...report.drop(urlCall, `box_url ${showValue(given)}: vmfile downloads boxes over http(s); add the box with vmfile box add ${name} FILE`).comments);
  }
  for (const key of ['box_download_checksum', 'box_download_checksum_type']) {
    const extra = scalars.get(key);
    if (extra !== undefined && urlCall === undefined) comments.push(...report.drop(extra, `${key} without box_url`).comments);
  }
  // Vagrant looks an org/name box up in its catalog at VAGRANT_SERVER_URL/org/name.
  if (name.includes('/')) return { url: `${options.boxServer.replace(/\/+$/, '')}/${name}` };
  return undefined;
}

const HOSTNAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i;

function hostnameEntry(call: RecordedCall | undefined, report: Report): Entry | undefined {
  if (call === undefined) return undefined;
  const name = call.args[0];
  if (typeof name !== 'string') return report.drop(call, `hostname ${showValue(name)}: expected a string`);
  if (HOSTNAME.test(name)) return entry('hostname', value(name));
  const label = name.split('.')[0] ?? '';
  if (HOSTNAME.test(label)) return entry('hostname', value(label), report.change(call, `hostname ${name}: vmfile sets a host name without a domain, ${label}`).comments);
  return report.drop(call, `hostname ${showValue(name)}: not a host name (letters, digits and "-")`);
}

/** `{ defaults, machines }`, with every entry all machines have alike (same text) in defaults. */
function multiMachine(machines: { name: string; entries: Entry[] }[]): Node {
  const text = (e: Entry): string => `${e.comments.join('\n')}\n${e.value === undefined ? '' : render(e.value)}`;
  const keyed = (m: { entries: Entry[] }, key: string): Entry | undefined => m.entries.find((e) => e.key === key);
  const shared = (machines[0]?.entries ?? []).filter((e) => e.key !== undefined && e.key !== 'primary' && e.key !== 'autostart' && machines.length > 1 && machines.every((m) => {
    const other = keyed(m, e.key ?? '');
    return other !== undefined && text(other) === text(e);
  }));
  const sharedKeys = new Set(shared.map((e) => e.key));
  return object([
    ...(shared.length === 0 ? [] : [entry('defaults', object(shared))]),
    entry('machines', object(machines.map((m) => entry(m.name, object(m.entries.filter((e) => e.key === undefined || !sharedKeys.has(e.key))))))),
  ]);
}

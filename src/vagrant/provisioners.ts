/**
 * `config.vm.provision` calls as Vmfile steps: shell (inline or path, with args, env,
 * privileged), file, and ansible / ansible_local (playbook, extra_vars, groups, limit),
 * each with `run`. ansible_local runs Ansible inside the guest; vmfile's ansible step
 * runs it from the host against the machine, which is said. Pure.
 */
import { posix } from 'node:path';
import { asHash, showValue, type RecordedCall, type RubyValue } from './record.js';
import { showCall, type Report } from './report.js';
import { array, entry, object, value, type Entry, type Node } from './source.js';
import type { ConvertedFolder } from './folders.js';

export interface StepContext {
  report: Report;
  hostPath: (path: string) => string;
  folders: readonly ConvertedFolder[];
  /** Vagrant machine name -> Vmfile machine name. */
  machineNames: ReadonlyMap<string, string>;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const ANSIBLE_GROUP = /^[A-Za-z_][A-Za-z0-9_]*$/;
const ANSIBLE_PATTERN = /^[A-Za-z0-9_.*:&!,-]+$/;
const SHELL_KEYS = new Set(['inline', 'path', 'args', 'env', 'privileged']);
const ANSIBLE_KEYS = new Set(['playbook', 'extra_vars', 'groups', 'limit', 'provisioning_path']);

export function convertProvisioners(calls: readonly RecordedCall[], context: StepContext): Entry[] {
  const steps = calls.map((call) => convertOne(call, context));
  // Vagrant provisions the machine itself, after its folders, hostname and network are
  // up. A cached step (a provisioning layer) would run before all of those, so the first
  // step, and with it every later one, is kept on the machine.
  const first = steps.find((step) => step.value?.kind === 'object');
  if (first?.value?.kind === 'object') {
    first.value.entries.push(entry('cache', value(false)));
    first.comments.push("cache: false: as in Vagrant, the steps run on the machine once its folders and network are up; without it vmfile caches the first steps as layers (see README, Provisioning layers)");
  }
  return steps;
}

function convertOne(call: RecordedCall, context: StepContext): Entry {
  const { report } = context;
  const first = String(call.args[0] ?? '');
  const options: Record<string, RubyValue> = { ...(asHash(call.args[1]) ?? {}) };
  // Block form: `config.vm.provision "shell" do |s| s.inline = "..." end`.
  const extra: Entry[] = [];
  for (const setting of call.blocks?.[0] ?? []) {
    if (setting.target.length === 0 && setting.method.endsWith('=') && setting.args.length === 1) options[setting.method.slice(0, -1)] = setting.args[0] ?? null;
    else if (setting.target.length === 1 && setting.method === '[]=' && setting.args.length === 2) {
      const key = setting.target[0] ?? '';
      options[key] = { ...(asHash(options[key]) ?? {}), [String(setting.args[0])]: setting.args[1] ?? null };
    } else extra.push(report.drop(setting, `${showCall(setting, 'provisioner')}: not a provisioner setting vmfile converts`));
  }
  const type = typeof options['type'] === 'string' ? options['type'] : first;
  const name = typeof options['type'] === 'string' ? first : typeof options['name'] === 'string' ? options['name'] : undefined;
  delete options['type'];
  delete options['name'];
  const fields: Entry[] = [];
  const notes: Entry[] = [...extra];
  if (name !== undefined && name !== '') fields.push(entry('name', value(name.slice(0, 64))));
  const run = options['run'];
  delete options['run'];
  const used = new Set<string>();
  let body: Entry[] | undefined;
  if (type === 'shell') body = shellStep(call, options, context, notes, used);
  else if (type === 'file') body = fileStep(call, options, context, notes, used);
  else if (type === 'ansible' || type === 'ansible_local') body = ansibleStep(call, type, options, context, notes, used);
  if (body === undefined) {
    // A step refused for a reason already said is not said twice.
    const said = notes.length > extra.length ? [] : report.drop(call, `${showCall(call, 'config')}: ${type === 'shell' || type === 'file' || type.startsWith('ansible') ? 'incomplete' : `the ${type} provisioner is not one vmfile has`}`).comments;
    return { comments: [...notes.flatMap((n) => n.comments), ...said] };
  }
  fields.push(...body);
  if (run === 'always' || run === 'never') fields.push(entry('run', value(run)));
  else if (run !== undefined && run !== 'once') notes.push(report.drop(call, `run: ${showValue(run)}: vmfile steps run once, always or never; once is used`));
  for (const [key, v] of Object.entries(options)) if (!used.has(key)) notes.push(report.drop(call, `${type} option ${key}: ${showValue(v)}`));
  return { ...entry(undefined, object(fields)), comments: notes.flatMap((n) => n.comments) };
}

function shellStep(call: RecordedCall, options: Record<string, RubyValue>, context: StepContext, notes: Entry[], used: Set<string>): Entry[] | undefined {
  const { report } = context;
  SHELL_KEYS.forEach((key) => used.add(key));
  const fields: Entry[] = [];
  const inline = options['inline'];
  const path = options['path'];
  if (typeof inline === 'string' && inline.trim() !== '') fields.push(entry('shell', value(inline)));
  else if (Array.isArray(inline) && inline.every((line) => typeof line === 'string')) fields.push(entry('shell', value(inline.join('\n'))));
  else if (typeof path === 'string' && /^[a-z]+:\/\//i.test(path)) {
    notes.push(report.drop(call, `shell path ${path}: vmfile runs scripts from the project, not from a URL; download it into the project and name it`));
    return undefined;
  } else if (typeof path === 'string' && path !== '') fields.push(entry('script', value(context.hostPath(path))));
  else return undefined;
  const args = options['args'];
  if (args !== undefined && args !== null) {
    const words = Array.isArray(args) ? args.map((a) => (typeof a === 'string' || typeof a === 'number' ? String(a) : undefined)) : typeof args === 'string' || typeof args === 'number' ? splitPlain(String(args)) : undefined;
    if (fields[0]?.key !== 'script') notes.push(report.drop(call, `args ${showValue(args)}: vmfile passes arguments to script steps only; put them in the inline script`));
    else if (words === undefined || words.some((w) => w === undefined)) notes.push(report.drop(call, `args ${showValue(args)}: a string Vagrant hands to the shell as it is; give them as a list of words`));
    else fields.push(entry('args', array(words.map((w) => entry(undefined, value(w ?? ''))))));
  }
  const env = asHash(options['env']);
  if (env !== undefined) {
    const pairs: Entry[] = [];
    for (const [key, v] of Object.entries(env)) {
      if (!ENV_NAME.test(key) || (typeof v === 'object' && v !== null)) notes.push(report.drop(call, `env ${key}: ${showValue(v)}: not a variable name and a plain value`));
      else pairs.push(entry(key, value(v === null ? '' : String(v))));
    }
    if (pairs.length > 0) fields.push(entry('env', object(pairs)));
  } else if (options['env'] !== undefined) notes.push(report.drop(call, `env ${showValue(options['env'])}: expected a hash`));
  const privileged = options['privileged'];
  if (privileged === false) fields.push(entry('privileged', value(false)));
  else if (privileged !== undefined && privileged !== true) notes.push(report.drop(call, `privileged ${showValue(privileged)}: expected true or false`));
  return fields;
}

/** Words of a string of plain arguments; undefined when the shell would do more than split it. */
function splitPlain(text: string): string[] | undefined {
  if (!/^[A-Za-z0-9_.,:=/@%+\s-]*$/.test(text)) return undefined;
  return text.split(/\s+/).filter((word) => word !== '');
}

function fileStep(call: RecordedCall, options: Record<string, RubyValue>, context: StepContext, notes: Entry[], used: Set<string>): Entry[] | undefined {
  used.add('source');
  used.add('destination');
  const { source, destination } = options;
  if (typeof source !== 'string' || typeof destination !== 'string' || source === '') return undefined;
  if (!destination.startsWith('/')) {
    notes.push(report(context).drop(call, `file destination ${showValue(destination)}: vmfile uploads to an absolute guest path (the login user differs between boxes)`));
    return undefined;
  }
  return [entry('file', object([entry('source', value(context.hostPath(source))), entry('destination', value(destination))]))];
}

function report(context: StepContext): Report {
  return context.report;
}

function ansibleStep(call: RecordedCall, type: string, options: Record<string, RubyValue>, context: StepContext, notes: Entry[], used: Set<string>): Entry[] | undefined {
  const { report: r } = context;
  ANSIBLE_KEYS.forEach((key) => used.add(key));
  const playbook = options['playbook'];
  if (typeof playbook !== 'string' || playbook === '') return undefined;
  let path: string;
  if (type === 'ansible_local') {
    // ansible_local reads the playbook in the guest, relative to provisioning_path (/vagrant).
    const base = typeof options['provisioning_path'] === 'string' ? options['provisioning_path'] : '/vagrant';
    const inGuest = posix.resolve(base, playbook);
    const folder = context.folders.find((f) => inGuest === f.guest || inGuest.startsWith(`${f.guest.replace(/\/$/, '')}/`));
    if (folder === undefined) {
      notes.push(r.drop(call, `ansible_local playbook ${inGuest}: no synced folder holds it, so its host file is unknown`));
      return undefined;
    }
    path = posix.join(folder.host, posix.relative(folder.guest, inGuest)) || '.';
    notes.push(r.change(call, 'ansible_local ran Ansible inside the guest; this step runs the host\'s ansible-playbook (Debian: ansible-core) against the machine'));
  } else {
    if (options['provisioning_path'] !== undefined) notes.push(r.drop(call, `provisioning_path ${showValue(options['provisioning_path'])}: an ansible_local option`));
    path = context.hostPath(playbook);
  }
  const spec: Entry[] = [entry('playbook', value(path))];
  const extraVars = asHash(options['extra_vars']);
  if (extraVars !== undefined) {
    const vars = Object.entries(extraVars).filter(([key]) => ENV_NAME.test(key) || (notes.push(r.drop(call, `extra var ${showValue(key)}: not a variable name`)), false));
    if (vars.length > 0) spec.push(entry('extraVars', object(vars.map(([key, v]) => entry(key, json(v))))));
  } else if (options['extra_vars'] !== undefined) notes.push(r.drop(call, `extra_vars ${showValue(options['extra_vars'])}: vmfile takes extra vars as a hash`));
  const groups = asHash(options['groups']);
  if (groups !== undefined) {
    const kept: Entry[] = [];
    for (const [group, members] of Object.entries(groups)) {
      const list = (Array.isArray(members) ? members : [members]).map(String);
      const names = list.map((m) => context.machineNames.get(m));
      if (!ANSIBLE_GROUP.test(group) || names.some((n) => n === undefined)) {
        notes.push(r.drop(call, `ansible group ${group}: ${showValue(members)}: vmfile groups are plain group names listing machines of this Vmfile`));
        continue;
      }
      kept.push(entry(group, array(names.map((n) => entry(undefined, value(n ?? ''))))));
    }
    if (kept.length > 0) spec.push(entry('groups', object(kept)));
  } else if (options['groups'] !== undefined) notes.push(r.drop(call, `groups ${showValue(options['groups'])}: expected a hash`));
  const limit = options['limit'];
  const limitText = Array.isArray(limit) ? limit.map(String).join(',') : typeof limit === 'string' ? limit : undefined;
  if (limitText !== undefined && ANSIBLE_PATTERN.test(limitText)) spec.push(entry('limit', value(limitText)));
  else if (limit !== undefined) notes.push(r.drop(call, `limit ${showValue(limit)}: not an Ansible host pattern vmfile accepts`));
  return [entry('ansible', object(spec))];
}

/** Any JSON value as a node (extra vars). */
function json(v: RubyValue): Node {
  if (v === null) return value(null);
  if (Array.isArray(v)) return array(v.map((item) => entry(undefined, json(item))));
  if (typeof v === 'object') return object(Object.entries(v).map(([key, item]) => entry(key, json(item))));
  return value(v);
}

/**
 * From a parsed Vmfile to plain per-machine configuration. Pure: no I/O, so the
 * schema's messages and defaults are tested with tables.
 */
import { basename, posix, resolve } from 'node:path';
import type { z } from 'zod';
import { ConfigError } from '../errors.js';
import { validatePrivateIps } from './private-ip.js';
import { isExactVersion, parseVersionConstraints, type VersionConstraint } from './version.js';
import { machineSchema, multiMachineSchema, type FolderSpec, type MachineOutput, type PortSpec, type ProviderSpec } from './schema.js';
import { normalizeStep, type ProvisionStep } from './steps.js';
import { recordedUri } from './libvirt-uri.js';

/** Which box a machine uses, and where to download it when it is missing. */
export interface BoxRef {
  name: string;
  /** One exact version. */
  version?: string;
  /** Or a range: the newest installed (or published) version that meets every constraint. */
  constraints?: VersionConstraint[];
  /** A Vagrant catalog or a box file (see schema.ts). */
  url?: string;
  /** "sha256:HEX" of the box file at `url`. */
  checksum?: string;
  /** An archive-snapshot mirror for rebuilding a locked box from a recipe (box/locked-packages.ts). */
  snapshotMirror?: string;
}

export interface MachineConfig {
  name: string;
  box: BoxRef;
  cpus: number;
  /** Bytes. */
  memory: number;
  /** Bytes. */
  disk: number;
  hostname: string;
  accel: 'auto' | 'kvm' | 'tcg';
  /** Firmware for a box that boots itself; undefined: the box's own default. */
  firmware?: 'bios' | 'uefi';
  /** Seconds to wait for SSH after QEMU starts. */
  bootTimeout: number;
  /**
   * A new machine starts from a warm state of its box where it can (lifecycle/warm.ts):
   * 'auto' unless the Vmfile says true (then a machine that cannot is told why) or false.
   */
  warmStart: boolean | 'auto';
  /** Where it runs: vmfile's own QEMU, or one libvirt host (driver/libvirt/), placed already when the Vmfile names several. */
  provider: MachineProvider;
  provision: ProvisionStep[];
  ports: PortSpec[];
  /** Address on the Vmfile's private network, if the machine joins it. */
  privateIp?: string;
  /** Host paths are absolute (resolved from the Vmfile's directory). */
  folders: FolderSpec[];
  primary: boolean;
  autostart: boolean;
}

export type MachineProvider = { type: 'qemu' } | { type: 'libvirt'; uri: string; pool: string };

/**
 * Where a provider (as a Vmfile names it, or as a machine record keeps it: none is
 * vmfile's own QEMU) puts a machine, for messages and for telling whether it moved.
 */
export function providerLabel(provider: { type: string; uri?: string } | undefined): string {
  // The host alone, as a record keeps it: options only a Vmfile may give (command=...) are no move.
  return provider === undefined || provider.uri === undefined ? "vmfile's own QEMU" : `${provider.type} ${recordedUri(provider.uri)}`;
}

export interface Project {
  /** Directory holding the Vmfile; relative paths in it resolve from here. */
  dir: string;
  vmfilePath: string;
  /**
   * The files the loader ran for the Vmfile's value (the Vmfile first, then the local
   * modules it imports), as real paths: code the host runs, which a writable live folder
   * must not hand to a guest (folders/sync.ts).
   */
  loadedFiles: string[];
  machines: MachineConfig[];
}

/** A single-machine Vmfile's machine is called "default", as in Vagrant. */
export const DEFAULT_MACHINE = 'default';

/** `loadedFiles`: what the loader saw the Vmfile load (default: the Vmfile alone). */
export function parseVmfile(value: unknown, vmfilePath: string, projectDir: string, loadedFiles: readonly string[] = [vmfilePath]): Project {
  const problems: string[] = [];
  const machines: MachineConfig[] = [];
  const multi = typeof value === 'object' && value !== null && !Array.isArray(value) && 'machines' in value;
  if (multi) {
    const shape = multiMachineSchema.safeParse(value);
    if (!shape.success) {
      problems.push(...formatIssues(shape.error.issues));
    } else {
      const defaults = shape.data.defaults ?? {};
      // The n-th machine that places itself over hosts takes the n-th host, round-robin.
      let placements = 0;
      for (const [name, raw] of Object.entries(shape.data.machines)) {
        const result = machineSchema.safeParse({ ...defaults, ...raw });
        if (result.success) {
          machines.push(toMachine(name, result.data, name, projectDir, placements));
          if (result.data.provider.type === 'libvirt' && result.data.provider.hosts !== undefined) placements++;
        }
        // A problem in a key the machine sets is the machine's; otherwise it came from defaults.
        else problems.push(...formatIssues(result.error.issues, (key) => (key in raw ? ['machines', name] : ['defaults'])));
      }
    }
  } else {
    const result = machineSchema.safeParse(value);
    if (result.success) machines.push(toMachine(DEFAULT_MACHINE, result.data, hostnameFrom(basename(projectDir)), projectDir, 0));
    else problems.push(...formatIssues(result.error.issues));
  }
  // Across the machines that parsed, so a problem in one machine hides no other.
  problems.push(...crossMachineProblems(machines), ...outputProblems(machines));
  const unique = [...new Set(problems)];
  if (unique.length > 0) {
    throw new ConfigError(`${basename(vmfilePath)} is invalid:\n${unique.map((line) => `  - ${line}`).join('\n')}`, {
      hint: `fix the field${unique.length > 1 ? 's' : ''} above, then check with: vmfile validate`,
    });
  }
  return { dir: projectDir, vmfilePath, loadedFiles: [...loadedFiles], machines };
}

function toMachine(name: string, vm: MachineOutput, defaultHostname: string, projectDir: string, placement: number): MachineConfig {
  return {
    name,
    box: boxRefOf(vm.box),
    cpus: vm.cpus,
    memory: vm.memory,
    disk: vm.disk,
    hostname: vm.hostname ?? defaultHostname,
    accel: vm.accel,
    ...(vm.firmware === undefined ? {} : { firmware: vm.firmware }),
    bootTimeout: vm.bootTimeout,
    warmStart: vm.warmStart ?? 'auto',
    provider: placed(vm.provider, placement),
    provision: withOutputBase(vm.provision.map(normalizeStep), projectFolder(vm.folders, projectDir)),
    ports: vm.ports,
    ...(vm.network === undefined ? {} : { privateIp: vm.network.ip }),
    folders: vm.folders.map((folder) => {
      const host = resolve(projectDir, folder.host);
      return { ...folder, host, gitignore: folder.gitignore ?? host === projectDir };
    }),
    primary: vm.primary,
    autostart: vm.autostart,
  };
}

/** Where the project directory is in the guest: the guest path of the folder that syncs it, if one does. */
function projectFolder(folders: MachineOutput['folders'], projectDir: string): string | undefined {
  return folders.find((folder) => resolve(projectDir, folder.host) === projectDir)?.guest;
}

/** Relative outputs made absolute under the project's folder in the guest; left relative (and refused by outputProblems) when no folder syncs it. */
function withOutputBase(steps: ProvisionStep[], base: string | undefined): ProvisionStep[] {
  if (base === undefined) return steps;
  return steps.map((step) => (step.outputs === undefined ? step : { ...step, outputs: step.outputs.map((output) => (output.startsWith('/') ? output : posix.join(base, output))) }));
}

/** Outputs still relative: no folder syncs the project directory, so there is nothing they are relative to. */
function outputProblems(machines: readonly MachineConfig[]): string[] {
  return machines.flatMap((machine) =>
    machine.provision.flatMap((step) =>
      (step.outputs ?? [])
        .filter((output) => !output.startsWith('/'))
        .map((output) => `machine "${machine.name}": step "${step.name}": output "${output}" is relative, but no folder syncs the project directory into the guest; give an absolute guest path`),
    ),
  );
}

/** The one host a machine goes to: its own uri, or its turn over hosts ('spread'). */
function placed(provider: ProviderSpec, index: number): MachineProvider {
  if (provider.type === 'qemu') return provider;
  if (provider.hosts === undefined) return { type: 'libvirt', uri: provider.uri ?? 'qemu:///system', pool: provider.pool };
  const host = provider.hosts[index % provider.hosts.length] ?? 'qemu:///system';
  return typeof host === 'string' ? { type: 'libvirt', uri: host, pool: provider.pool } : { type: 'libvirt', uri: host.uri, pool: host.pool ?? provider.pool };
}

function boxRefOf(box: MachineOutput['box']): BoxRef {
  if (typeof box === 'string') return { name: box };
  const constraints = box.version === undefined || isExactVersion(box.version) ? undefined : parseVersionConstraints(box.version);
  return {
    name: box.name,
    ...(box.version === undefined ? {} : constraints === undefined ? { version: box.version } : { constraints }),
    ...(box.url === undefined ? {} : { url: box.url }),
    ...(box.checksum === undefined ? {} : { checksum: box.checksum.toLowerCase() }),
    ...(box.snapshotMirror === undefined ? {} : { snapshotMirror: box.snapshotMirror }),
  };
}

/** What no single machine can see: shared addresses, ports and the primary. */
function crossMachineProblems(machines: readonly MachineConfig[]): string[] {
  const problems: string[] = [];
  const addressed = machines.flatMap((machine) => (machine.privateIp === undefined ? [] : [{ name: machine.name, ip: machine.privateIp }]));
  for (const problem of validatePrivateIps(addressed)) {
    const last = problem.machines.at(-1);
    problems.push(`${machines.length === 1 && machines[0]?.name === DEFAULT_MACHINE ? '' : `machines.${last ?? ''}.`}network.ip: ${problem.message}`);
  }
  // A private network is one switch on one host; joining machines on several hosts would need a tunnel between them.
  const where = (machine: MachineConfig) => (machine.provider.type === 'qemu' ? 'this host' : machine.provider.uri);
  const networked = machines.filter((machine) => machine.privateIp !== undefined);
  const hosts = [...new Set(networked.map(where))];
  if (hosts.length > 1) {
    problems.push(`network: the private network would span several hosts (${networked.map((machine) => `${machine.name} on ${where(machine)}`).join(', ')}); put the machines that share it on one host`);
  }
  // One host port can be bound once per address, and 0.0.0.0 takes every address.
  const bound: { machine: string; hostIp: string; host: number; protocol: string }[] = [];
  for (const machine of machines) {
    const field = machines.length === 1 && machine.name === DEFAULT_MACHINE ? 'ports' : `machines.${machine.name}.ports`;
    for (const forward of machine.ports) {
      const clash = bound.find((other) => other.host === forward.host && other.protocol === forward.protocol && overlaps(other.hostIp, forward.hostIp));
      if (clash !== undefined) {
        const by = clash.machine === machine.name ? 'forwarded twice' : `also forwarded by machine ${clash.machine}`;
        const addresses = clash.hostIp === forward.hostIp ? '' : ` (${clash.hostIp} and ${forward.hostIp} overlap: 0.0.0.0 is every address)`;
        problems.push(`${field}: host port ${forward.host}/${forward.protocol} is ${by}${addresses}`);
      }
      bound.push({ machine: machine.name, hostIp: forward.hostIp, host: forward.host, protocol: forward.protocol });
    }
  }
  const primaries = machines.filter((machine) => machine.primary).map((machine) => machine.name);
  if (primaries.length > 1) problems.push(`primary: only one machine can be primary, not ${primaries.join(' and ')}`);
  return problems;
}

function overlaps(a: string, b: string): boolean {
  return a === b || a === '0.0.0.0' || b === '0.0.0.0';
}

/** `provision[1].run: expected "once", "always" or "never"` — one line per problem, with its path. */
export function formatIssues(issues: readonly z.core.$ZodIssue[], prefix: (key: string) => PropertyKey[] = () => []): string[] {
  return issues.map((issue) => {
    const first = issue.code === 'unrecognized_keys' && issue.path.length === 0 ? issue.keys[0] : issue.path[0];
    const path = formatPath([...(first === undefined ? [] : prefix(String(first))), ...issue.path]);
    if (issue.code === 'unrecognized_keys') {
      const keys = issue.keys.map((key) => `"${key}"`).join(', ');
      return `${path === '' ? '' : `${path}: `}unknown key${issue.keys.length > 1 ? 's' : ''} ${keys}`;
    }
    // zod reports a bad record key as "invalid_key" wrapping the key schema's own issue.
    const message = issue.code === 'invalid_key' ? (issue.issues[0]?.message ?? issue.message) : issue.message;
    return `${path === '' ? '(top level)' : path}: ${message}`;
  });
}

function formatPath(path: readonly PropertyKey[]): string {
  let text = '';
  for (const part of path) {
    if (typeof part === 'number') text += `[${part}]`;
    else text += text === '' ? String(part) : `.${String(part)}`;
  }
  return text;
}

/** A valid hostname from a directory name ("My Project" -> "my-project"). */
export function hostnameFrom(name: string): string {
  const cleaned = name
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63)
    .replace(/-+$/, '');
  return cleaned === '' ? 'vmfile' : cleaned;
}

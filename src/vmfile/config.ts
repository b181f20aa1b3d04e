/**
 * From a parsed Vmfile to plain per-machine configuration. Pure: no I/O, so the
 * schema's messages and defaults are tested with tables.
 */
import { basename } from 'node:path';
import type { z } from 'zod';
import { ConfigError } from '../errors.js';
import { normalizeStep, vmfileSchema, type ProvisionStep } from './schema.js';

export interface BoxRef {
  name: string;
  version?: string;
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
  /** Seconds to wait for SSH after QEMU starts. */
  bootTimeout: number;
  provision: ProvisionStep[];
}

export interface Project {
  /** Directory holding the Vmfile; relative paths in it resolve from here. */
  dir: string;
  vmfilePath: string;
  machines: MachineConfig[];
}

/** A single-machine Vmfile's machine is called "default", as in Vagrant. */
export const DEFAULT_MACHINE = 'default';

export function parseVmfile(value: unknown, vmfilePath: string, projectDir: string): Project {
  const result = vmfileSchema.safeParse(value);
  if (!result.success) {
    const lines = formatIssues(result.error.issues);
    throw new ConfigError(`${basename(vmfilePath)} is invalid:\n${lines.map((line) => `  - ${line}`).join('\n')}`, {
      hint: `fix the field${lines.length > 1 ? 's' : ''} above, then check with: vmfile validate`,
    });
  }
  const vm = result.data;
  const provision = vm.provision.map(normalizeStep);
  const box: BoxRef = typeof vm.box === 'string' ? { name: vm.box } : vm.box.version === undefined ? { name: vm.box.name } : { name: vm.box.name, version: vm.box.version };
  const machine: MachineConfig = {
    name: DEFAULT_MACHINE,
    box,
    cpus: vm.cpus,
    memory: vm.memory,
    disk: vm.disk,
    hostname: vm.hostname ?? hostnameFrom(basename(projectDir)),
    accel: vm.accel,
    bootTimeout: vm.bootTimeout,
    provision,
  };
  return { dir: projectDir, vmfilePath, machines: [machine] };
}

/** `provision[1].run: expected "once", "always" or "never"` — one line per problem, with its path. */
export function formatIssues(issues: readonly z.core.$ZodIssue[]): string[] {
  return issues.map((issue) => {
    const path = formatPath(issue.path);
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

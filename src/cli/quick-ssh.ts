/**
 * vmssh's quick path. `vmssh [MACHINE] [-c COMMAND]` on a running machine of the
 * built-in provider goes straight to OpenSSH and the machine's shared connection
 * (ssh/master.ts), without loading oclif or compiling the Vmfile: together they are most
 * of the second a `vmssh -c true` used to take. Only the machine's record is read, and
 * what the full command needs a Vmfile for is not guessed: with no machine named, the
 * quick path is taken only when the project has exactly one machine and it is a
 * single-machine Vmfile's ("default"). Anything else (other options, no such record, a
 * record that does not look right, a machine not running, or one whose driver does not
 * run it as a process here) answers
 * undefined, and the full `vmfile ssh` runs with all its checks and messages.
 */
import { spawn } from 'node:child_process';
import { readdir, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { localProcessPid } from '../driver/local-process.js';
import { openSshOptions } from '../guest/openssh.js';
import { sshOptionArgs } from '../ssh/config.js';
import { machinePaths, VMFILE_NAMES } from '../store/layout.js';
import { readRegularFile } from '../store/regular-file.js';
import type { MachineState } from '../store/machine.js';
import { MACHINE_NAME_PATTERN, POSIX_USER_PATTERN } from '../vmfile/names.js';

const SINGLE_MACHINE = 'default';

/** The arguments vmssh's quick path takes, or undefined for any other form. */
export function quickForm(argv: readonly string[]): { machine?: string; command?: string } | undefined {
  let machine: string | undefined;
  let command: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if ((arg === '-c' || arg === '--command') && command === undefined && i + 1 < argv.length) command = argv[++i];
    else if (!arg.startsWith('-') && machine === undefined && MACHINE_NAME_PATTERN.test(arg)) machine = arg;
    else return undefined;
  }
  return { ...(machine === undefined ? {} : { machine }), ...(command === undefined ? {} : { command }) };
}

/** Runs ssh and resolves with its exit code, or resolves undefined when the full command must run. */
export async function quickSsh(argv: readonly string[], cwd = process.cwd()): Promise<number | undefined> {
  const form = quickForm(argv);
  if (form === undefined) return undefined;
  const project = await projectDir(cwd);
  if (project === undefined) return undefined;
  const name = form.machine ?? (await onlyMachine(project));
  if (name === undefined) return undefined;
  const paths = machinePaths(project, name);
  const state = await plainRecord(paths.state, name);
  // Only a machine whose driver runs it here as a process, known from its files alone.
  if (state === undefined || (await localProcessPid(paths.dir, state)) === undefined) return undefined;
  const args = sshOptionArgs(name, openSshOptions(paths, state, state.sshPort, undefined));
  args.push(form.command === undefined ? (process.stdin.isTTY ? '-t' : '-T') : '-T', name);
  if (form.command !== undefined) args.push('--', form.command);
  return new Promise((resolve) => {
    const child = spawn('ssh', args, { stdio: 'inherit' });
    child.once('error', () => resolve(undefined));
    child.once('exit', (code, signal) => resolve(code ?? (signal === null ? 255 : 128 + 15)));
  });
}

async function projectDir(cwd: string): Promise<string | undefined> {
  for (let dir = cwd; ; dir = dirname(dir)) {
    for (const name of VMFILE_NAMES) {
      if ((await stat(join(dir, name)).catch(() => undefined))?.isFile() === true) return dir;
    }
    if (dirname(dir) === dir) return undefined;
  }
}

async function onlyMachine(project: string): Promise<string | undefined> {
  const names = await readdir(join(project, '.vmfile', 'machines')).catch(() => []);
  return names.length === 1 && names[0] === SINGLE_MACHINE ? SINGLE_MACHINE : undefined;
}

/**
 * The record, when it is a running built-in machine's and the fields ssh needs are as
 * the full command would accept them; the full command reads (and judges) any other.
 */
async function plainRecord(path: string, name: string): Promise<(MachineState & { sshPort: number }) | undefined> {
  try {
    // A regular file only: a FIFO there would hang vmssh.
    const value = JSON.parse(await readRegularFile(path)) as Partial<MachineState>;
    if (value.name !== name || typeof value.user !== 'string' || !POSIX_USER_PATTERN.test(value.user)) return undefined;
    if (typeof value.sshPort !== 'number' || !Number.isInteger(value.sshPort) || value.login !== undefined || value.starting !== undefined) return undefined;
    return value as MachineState & { sshPort: number };
  } catch {
    return undefined;
  }
}

/** vmssh and vmfile ssh-config: the system's OpenSSH client, pinned to the machine's keys. */
import { resolve } from 'node:path';
import { runAttached } from '../exec.js';
import { UserError } from '../errors.js';
import { openSshOptions } from '../guest/openssh.js';
import { sshConfigBlock, sshOptionArgs } from '../ssh/config.js';
import { NO_SHARING } from '../ssh/master.js';
import { requireRunning } from '../guest/running.js';
import { inspectIn, isRunning, type RunningInstance } from '../instance/inspect.js';
import { selectMachines, selectOne } from '../instance/select.js';
import type { Project } from '../vmfile/config.js';

export interface SshOptions {
  project: Project;
  machine?: string;
  command?: string;
  /** Extra arguments for ssh itself (after --). */
  sshArgs?: readonly string[];
}

/** Opens a shell (or runs one command); resolves with ssh's exit code, which is the command's. */
export async function ssh(options: SshOptions): Promise<number> {
  const machine = selectOne(options.project, options.machine, { command: 'vmssh MACHINE', usePrimary: true });
  const target = await requireRunning(options.project, machine.name);
  const extra = options.sshArgs ?? [];
  // Forwards or other options after -- would be set up on the shared master and outlive
  // this command there, so such a session gets a connection of its own.
  const args = [...optionArgs(target, extra.length === 0), ...extra];
  if (options.command === undefined) {
    if (process.stdin.isTTY) args.push('-t');
  } else {
    args.push('-T');
  }
  args.push(target.name);
  if (options.command !== undefined) args.push('--', options.command);
  return runAttached('ssh', args);
}

export interface CopyOptions {
  project: Project;
  machine?: string;
  direction: 'upload' | 'download';
  /** Host path for an upload, guest path for a download. */
  source: string;
  destination: string;
}

/**
 * vmfile upload / download: OpenSSH's scp (SFTP protocol: guest paths are taken
 * literally, never by a remote shell) with the machine's pinned options. Directories
 * are copied whole. Host paths are made absolute, so a ":" in one never names a host.
 */
export async function copy(options: CopyOptions): Promise<void> {
  const machine = selectOne(options.project, options.machine, { command: `vmfile ${options.direction} --machine NAME`, usePrimary: true });
  const target = await requireRunning(options.project, machine.name);
  const guest = (path: string) => `${target.name}:${path}`;
  const [from, to] = options.direction === 'upload' ? [resolve(options.source), guest(options.destination)] : [guest(options.source), resolve(options.destination)];
  const code = await runAttached('scp', [...optionArgs(target), '-r', '-q', '--', from, to]);
  if (code !== 0) {
    throw new UserError(`machine "${machine.name}": ${options.direction === 'upload' ? 'uploading' : 'downloading'} ${options.source} to ${options.destination} failed (scp exit code ${code}; its message is above)`, {
      hint: 'check both paths, and that the login user may write to the destination',
    });
  }
}

function optionArgs(target: RunningInstance, shared = true): string[] {
  const options = openSshOptions(target.paths, target.state, target.state.sshPort, target.driver.sshHop());
  return sshOptionArgs(target.name, shared ? options : { ...options, ...NO_SHARING });
}

/** An OpenSSH config block per running machine, usable with `ssh -F FILE NAME`. */
export async function sshConfig(options: { project: Project; machines?: readonly string[] }): Promise<string> {
  const blocks: string[] = [];
  for (const machine of selectMachines(options.project, options.machines)) {
    const current = await inspectIn(options.project, machine.name);
    if (!isRunning(current)) continue;
    blocks.push(sshConfigBlock(machine.name, machine.name, openSshOptions(current.paths, current.state, current.state.sshPort, current.driver.sshHop())));
  }
  if (blocks.length === 0) throw new UserError('no machine of this Vmfile is running', { hint: 'start it with: vmup' });
  return blocks.join('\n');
}

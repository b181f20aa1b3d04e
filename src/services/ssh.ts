/** vmssh and vmfile ssh-config: the system's OpenSSH client, pinned to the machine's keys. */
import { runAttached } from '../exec.js';
import { UserError } from '../errors.js';
import type { Project } from '../vmfile/config.js';
import { openSshOptions } from './communicator.js';
import { machineStatus, selectMachines, type MachineStatus } from './machine.js';

export interface SshOptions {
  project: Project;
  machine?: string;
  command?: string;
  /** Extra arguments for ssh itself (after --). */
  sshArgs?: readonly string[];
}

/** Opens a shell (or runs one command); resolves with ssh's exit code, which is the command's. */
export async function ssh(options: SshOptions): Promise<number> {
  const target = await runningMachine(options.project, options.machine);
  const args = [...optionArgs(target), ...(options.sshArgs ?? [])];
  if (options.command === undefined) {
    if (process.stdin.isTTY) args.push('-t');
  } else {
    args.push('-T');
  }
  args.push(target.state?.name ?? target.name);
  if (options.command !== undefined) args.push('--', options.command);
  return runAttached('ssh', args);
}

function optionArgs(target: MachineStatus): string[] {
  const state = target.state;
  if (state?.sshPort === undefined) throw new UserError(`machine "${target.name}" has no SSH port recorded`, { hint: 'run vmup again' });
  return Object.entries(openSshOptions(target.paths, state, state.sshPort)).flatMap(([key, value]) => ['-o', `${key}=${value}`]);
}

async function runningMachine(project: Project, name: string | undefined): Promise<MachineStatus> {
  const primary = project.machines.find((machine) => machine.primary);
  if (name === undefined && primary !== undefined) name = primary.name;
  if (name === undefined && project.machines.length > 1) {
    throw new UserError(`this Vmfile defines several machines; say which: ${project.machines.map((m) => m.name).join(', ')}`, {
      hint: `for example: vmssh ${project.machines[0]?.name ?? ''}`,
    });
  }
  const [machine] = selectMachines(project, name === undefined ? [] : [name]);
  if (machine === undefined) throw new UserError('this Vmfile defines no machine');
  const current = await machineStatus(project.dir, machine.name);
  if (current.status !== 'running') {
    throw new UserError(`machine "${machine.name}" is ${current.status === 'halted' ? 'halted' : 'not created'}`, { hint: 'start it with: vmup' });
  }
  return current;
}

/** An OpenSSH config block per running machine, usable with `ssh -F FILE NAME`. */
export async function sshConfig(options: { project: Project; machines?: readonly string[] }): Promise<string> {
  const blocks: string[] = [];
  for (const machine of selectMachines(options.project, options.machines)) {
    const current = await machineStatus(options.project.dir, machine.name);
    if (current.status !== 'running' || current.state?.sshPort === undefined) continue;
    const lines = Object.entries(openSshOptions(current.paths, current.state, current.state.sshPort)).map(([key, value]) => `  ${key} ${quoteConfig(value)}`);
    blocks.push(`Host ${machine.name}\n${lines.join('\n')}\n`);
  }
  if (blocks.length === 0) throw new UserError('no machine of this Vmfile is running', { hint: 'start it with: vmup' });
  return blocks.join('\n');
}

function quoteConfig(value: string): string {
  return /[\s"]/.test(value) ? `"${value.replaceAll('"', '\\"')}"` : value;
}

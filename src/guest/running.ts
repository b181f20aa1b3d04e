/**
 * The one guard for work inside a running guest: the machine must be running (else a
 * UserError that says what it is instead and how to start it), then one SSH session
 * for the work, closed whatever happens. With `lock`, the machine lock is held too.
 */
import type { Driver } from '../driver/driver.js';
import { GuestError, UserError } from '../errors.js';
import { describeStatus, inspectIn, isRunning, type RunningInstance } from '../instance/inspect.js';
import { SshConnectError, type SshSession } from '../ssh/client.js';
import { machinePaths } from '../store/layout.js';
import { withMachineLock } from '../store/lock.js';
import type { Project } from '../vmfile/config.js';
import { connectGuest } from './communicator.js';

export async function withRunningMachine<T>(
  project: Project,
  name: string,
  fn: (machine: RunningInstance, session: SshSession) => Promise<T>,
  options: { lock?: string; hint?: string; instance?: RunningInstance } = {},
): Promise<T> {
  const work = async (): Promise<T> => {
    // A caller that inspected it already (under the same lock) passes it on: one inspection per command.
    const machine = options.instance ?? (await requireRunning(project, name, options.hint));
    const session = await connectGuest(machine.paths, machine.state, machine.state.sshPort, machine.driver.sshHop());
    try {
      return await fn(machine, session).catch((error: unknown) => whenQemuGone(error, machine.name, machine.driver, machine.pid, 'while vmfile worked in it'));
    } finally {
      session.close();
    }
  };
  if (options.lock === undefined) return work();
  return withMachineLock(machinePaths(project.dir, name).lock, name, options.lock, work);
}

export async function requireRunning(project: Project, name: string, hint?: string): Promise<RunningInstance> {
  const machine = await inspectIn(project, name);
  if (isRunning(machine)) return machine;
  const start = machine.status === 'suspended' ? 'continue it with: vmfile resume' : machine.status === 'broken' ? 'vmfile destroy clears it' : machine.status === 'unreachable' ? 'check its host, then run this again' : 'start it with: vmup';
  throw new UserError(`machine "${name}" ${describeStatus(machine)}, not running`, { hint: hint === undefined ? start : `${start}; ${hint}` });
}

/**
 * A lost SSH connection says only that: when the cause is that QEMU itself is gone
 * (killed, crashed), that is what the user needs to hear, and that vmup starts it again.
 */
export async function whenQemuGone(error: unknown, name: string, driver: Driver, pid: number, when: string): Promise<never> {
  if (error instanceof SshConnectError && (await driver.pid()) === undefined) {
    throw new GuestError(`machine "${name}": QEMU (pid ${pid}) exited ${when}`, {
      hint: 'vmup starts the machine again: what was done is kept, and provisioning steps that finished are not run again',
      cause: error,
    });
  }
  throw error;
}

/**
 * What a machine is doing now, from its record and its driver. Never throws for a
 * damaged machine: like Lima's store.Inspect, it reports it as "broken" with the
 * reason, so one bad machine never hides the others, and destroy can still clear it.
 */
import { VmfileError } from '../errors.js';
import { HostUnreachableError, type Driver } from '../driver/driver.js';
import { driverFor } from '../driver/registry.js';
import { machinePaths, type MachinePaths } from '../store/layout.js';
import { readMachineState, withoutRuntime, type MachineState } from '../store/machine.js';
import type { MachineProvider, Project } from '../vmfile/config.js';

export type MachineStatusName = 'not created' | 'running' | 'halted' | 'suspended' | 'broken' | 'unreachable';

export interface Instance {
  name: string;
  status: MachineStatusName;
  paths: MachinePaths;
  driver: Driver;
  /** The record; absent when not created or broken. Its runtime fields only while it runs. */
  state?: MachineState;
  /** While running (also for a broken machine whose QEMU still runs). */
  pid?: number;
  /** Why a machine is broken, or unreachable. */
  errors: string[];
}

/** A running machine, with what running guarantees. */
export type RunningInstance = Instance & { status: 'running'; state: MachineState & { sshPort: number }; pid: number };

/**
 * `provider` is the Vmfile's, for a machine not created yet (which driver creates it, or
 * clears what a create cut short left). A created machine's record says where it is,
 * whatever the Vmfile says now.
 */
export async function inspect(projectDir: string, name: string, provider?: MachineProvider): Promise<Instance> {
  const paths = machinePaths(projectDir, name);
  let state: MachineState | undefined;
  let damage: unknown;
  try {
    state = await readMachineState(paths.state);
  } catch (error) {
    damage = error;
  }
  const driver = driverFor(name, paths.dir, { recorded: state?.provider, wanted: provider });
  const base = { name, paths, driver, errors: [] as string[] };
  if (damage !== undefined) {
    const error = damage;
    const pid = await driver.pid().catch(() => undefined);
    return { ...base, status: 'broken', ...(pid === undefined ? {} : { pid }), errors: [error instanceof VmfileError ? error.message : String(error)] };
  }
  // The record is written last at creation: without it (or without the disk) the machine is created again.
  if (state === undefined || !(await driver.hasDisk())) return { ...base, status: 'not created' };
  let pid: number | undefined;
  try {
    pid = await driver.pid();
  } catch (error) {
    if (!(error instanceof HostUnreachableError)) throw error;
    return { ...base, status: 'unreachable', state: withoutRuntime(state), errors: [error.message] };
  }
  if (pid !== undefined) return { ...base, status: 'running', state, pid };
  // Ports and the accelerator held while it ran; a stop never has to clear them.
  return { ...base, status: state.suspendedAt === undefined ? 'halted' : 'suspended', state: withoutRuntime(state) };
}

/**
 * A machine of a loaded Vmfile: its driver reaches its host as the Vmfile says now (a
 * libvirt URI's own options come from the Vmfile, never from the record).
 */
export function inspectIn(project: Project, name: string): Promise<Instance> {
  return inspect(project.dir, name, project.machines.find((machine) => machine.name === name)?.provider);
}

export function isRunning(instance: Instance): instance is RunningInstance {
  return instance.status === 'running' && instance.pid !== undefined && instance.state?.sshPort !== undefined;
}

/** "is halted", "is suspended (...)": for messages that refuse an operation in the wrong state. */
export function describeStatus(instance: Instance): string {
  switch (instance.status) {
    case 'broken':
      return `is broken (${instance.errors.join('; ')})`;
    case 'unreachable':
      return `is on a host that does not answer (${instance.errors.join('; ')})`;
    case 'suspended':
      return 'is suspended (its memory is saved and QEMU is stopped)';
    default:
      return `is ${instance.status}`;
  }
}

export interface ListedPort {
  name: string;
  protocol: 'tcp' | 'udp';
  hostIp: string;
  host: number;
  guest: number;
}

/** The ports a running machine forwards, SSH first, as QEMU bound them. */
export function listedPorts(state: MachineState | undefined): ListedPort[] {
  const ssh = state?.sshPort;
  return [
    ...(ssh === undefined ? [] : [{ name: 'ssh', protocol: 'tcp' as const, hostIp: '127.0.0.1', host: ssh, guest: 22 }]),
    ...(state?.forwards ?? []).map((forward) => ({ name: `${forward.guestPort}/${forward.protocol}`, protocol: forward.protocol, hostIp: forward.hostIp, host: forward.hostPort, guest: forward.guestPort })),
  ];
}

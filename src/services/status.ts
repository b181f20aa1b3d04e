/**
 * vmfile status: what each machine is doing, from its record, its driver and QMP. A
 * broken machine is one line with its reason; it never hides the others.
 */
import type { MachineLocation } from '../driver/driver.js';
import { inspectIn, listedPorts, type ListedPort, type MachineStatusName } from '../instance/inspect.js';
import { driftOf } from '../instance/drift.js';
import { selectMachines } from '../instance/select.js';
import type { Project } from '../vmfile/config.js';

export interface StatusEntry {
  machine: string;
  status: MachineStatusName | 'paused';
  box?: string;
  pid?: number;
  accel?: string;
  ports: ListedPort[];
  /** Set while a boot or resume has not met every requirement yet (in progress, or interrupted: vmup finishes it). */
  starting?: 'boot' | 'resume';
  /** How the running machine differs from the Vmfile (vmfile reload applies it). */
  drift?: string[];
  /** Why a machine is broken. */
  errors?: string[];
  /** Where it runs: its driver and host, and what the host calls it. */
  where?: MachineLocation;
}

export async function status(options: { project: Project; machines?: readonly string[] }): Promise<StatusEntry[]> {
  return Promise.all(
    selectMachines(options.project, options.machines).map(async (machine): Promise<StatusEntry> => {
      const current = await inspectIn(options.project, machine.name);
      const where = current.state === undefined ? {} : { where: current.driver.location() };
      const box = { ...(current.state === undefined ? {} : { box: `${current.state.box.name} ${current.state.box.version}` }), ...where };
      if (current.status === 'broken') return { machine: machine.name, status: 'broken', ...(current.pid === undefined ? {} : { pid: current.pid }), ports: [], errors: current.errors };
      if (current.status === 'unreachable') return { machine: machine.name, status: 'unreachable', ...box, ports: [], errors: current.errors };
      if (current.status !== 'running' || current.pid === undefined) return { machine: machine.name, status: current.status, ...box, ports: [] };
      const drift = current.state === undefined ? [] : driftOf(machine, current.state);
      return {
        machine: machine.name,
        status: (await current.driver.paused()) ? 'paused' : 'running',
        ...box,
        pid: current.pid,
        ...(drift.length === 0 ? {} : { drift }),
        ...(current.state?.starting === undefined ? {} : { starting: current.state.starting }),
        ...(current.state?.accel === undefined ? {} : { accel: current.state.accel }),
        ports: listedPorts(current.state),
      };
    }),
  );
}

/**
 * vmfile status: what each machine is doing, from its record, /proc and QMP. A broken
 * machine is one line with its reason; it never hides the others.
 */
import { inspect, type MachineStatusName } from '../instance/inspect.js';
import { driftOf } from '../instance/drift.js';
import { selectMachines } from '../instance/select.js';
import type { Project } from '../vmfile/config.js';

export interface StatusEntry {
  machine: string;
  status: MachineStatusName | 'paused';
  box?: string;
  pid?: number;
  accel?: string;
  ports: { name: string; protocol: 'tcp' | 'udp'; hostIp: string; host: number; guest: number }[];
  /** Set while a boot or resume has not met every requirement yet (in progress, or interrupted: vmup finishes it). */
  starting?: 'boot' | 'resume';
  /** How the running machine differs from the Vmfile (vmfile reload applies it). */
  drift?: string[];
  /** Why a machine is broken. */
  errors?: string[];
}

export async function status(options: { project: Project; machines?: readonly string[] }): Promise<StatusEntry[]> {
  return Promise.all(
    selectMachines(options.project, options.machines).map(async (machine): Promise<StatusEntry> => {
      const current = await inspect(options.project.dir, machine.name);
      const box = current.state === undefined ? {} : { box: `${current.state.box.name} ${current.state.box.version}` };
      if (current.status === 'broken') return { machine: machine.name, status: 'broken', ...(current.pid === undefined ? {} : { pid: current.pid }), ports: [], errors: current.errors };
      if (current.status !== 'running' || current.pid === undefined) return { machine: machine.name, status: current.status, ...box, ports: [] };
      const port = current.state?.sshPort;
      const drift = current.state === undefined ? [] : driftOf(machine, current.state);
      return {
        machine: machine.name,
        status: (await current.driver.paused()) ? 'paused' : 'running',
        ...box,
        pid: current.pid,
        ...(drift.length === 0 ? {} : { drift }),
        ...(current.state?.starting === undefined ? {} : { starting: current.state.starting }),
        ...(current.state?.accel === undefined ? {} : { accel: current.state.accel }),
        ports: [
          ...(port === undefined ? [] : [{ name: 'ssh', protocol: 'tcp' as const, hostIp: '127.0.0.1', host: port, guest: 22 }]),
          ...(current.state?.forwards ?? []).map((forward) => ({
            name: `${forward.guestPort}/${forward.protocol}`,
            protocol: forward.protocol,
            hostIp: forward.hostIp,
            host: forward.hostPort,
            guest: forward.guestPort,
          })),
        ],
      };
    }),
  );
}

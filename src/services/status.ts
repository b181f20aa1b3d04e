/** vmfile status: what each machine is doing, from disk, /proc and QMP. */
import { QmpClient } from '../qmp/client.js';
import type { Project } from '../vmfile/config.js';
import { machineStatus, selectMachines } from './machine.js';

export interface StatusEntry {
  machine: string;
  status: 'not created' | 'running' | 'paused' | 'halted' | 'suspended';
  box?: string;
  pid?: number;
  accel?: string;
  ports: { name: string; protocol: 'tcp' | 'udp'; hostIp: string; host: number; guest: number }[];
}

export async function status(options: { project: Project; machines?: readonly string[] }): Promise<StatusEntry[]> {
  return Promise.all(
    selectMachines(options.project, options.machines).map(async (machine): Promise<StatusEntry> => {
      const current = await machineStatus(options.project.dir, machine.name);
      const box = current.state === undefined ? {} : { box: `${current.state.box.name} ${current.state.box.version}` };
      if (current.status !== 'running' || current.pid === undefined) {
        return { machine: machine.name, status: current.status, ...box, ports: [] };
      }
      const port = current.state?.sshPort;
      return {
        machine: machine.name,
        status: (await isPaused(current.paths.qmpSocket)) ? 'paused' : 'running',
        ...box,
        pid: current.pid,
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

/** Asks QEMU itself; a monitor that does not answer quickly is reported as running. */
async function isPaused(socket: string): Promise<boolean> {
  try {
    const qmp = await QmpClient.connect(socket, { timeoutMs: 1000 });
    try {
      const result = await qmp.execute<{ running?: boolean; status?: string }>('query-status', {}, { timeoutMs: 1000 });
      return result.running === false;
    } finally {
      qmp.close();
    }
  } catch {
    return false;
  }
}

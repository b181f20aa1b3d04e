/**
 * vmfile global-status: every machine vmfile knows on this host, across projects, from
 * the project index (store/projects.ts) and each project's own records. No Vmfile is
 * loaded: listing machines must not run every project's code.
 */
import { readdir } from 'node:fs/promises';
import { inspect, listedPorts, type ListedPort, type MachineStatusName } from '../instance/inspect.js';
import { machinesDir } from '../store/layout.js';
import { listProjects } from '../store/projects.js';

export interface GlobalEntry {
  project: string;
  vmfile: string;
  machine: string;
  status: MachineStatusName;
  pid?: number;
  ports: ListedPort[];
}

export async function globalStatus(options: { home: string }): Promise<{ machines: GlobalEntry[]; pruned: number }> {
  const { projects, pruned } = await listProjects(options.home);
  const machines: GlobalEntry[] = [];
  for (const { project, vmfile } of projects) {
    const names = (await readdir(machinesDir(project), { withFileTypes: true }).catch(() => [])).filter((entry) => entry.isDirectory()).map((entry) => entry.name);
    for (const name of names.sort()) {
      const current = await inspect(project, name);
      if (current.status === 'not created') continue;
      machines.push({
        project,
        vmfile,
        machine: name,
        status: current.status,
        ...(current.pid === undefined ? {} : { pid: current.pid }),
        ports: current.status === 'running' ? listedPorts(current.state) : [],
      });
    }
  }
  return { machines, pruned };
}

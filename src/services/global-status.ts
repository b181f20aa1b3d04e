/**
 * vmfile global-status: every machine vmfile knows on this host, across projects, from
 * the project index (store/projects.ts) and each project's own records. No Vmfile is
 * loaded: listing machines must not run every project's code. Nor may a record: a
 * project's .vmfile/ is untrusted, so a record's libvirt URI is read without the options
 * that name a program (vmfile/libvirt-uri.ts), and a record, index entry or pid file that
 * is not a regular file is damaged rather than waited on (store/regular-file.ts). Names
 * are returned exact; the command prints them escaped.
 */
import { inspect, listedPorts, type ListedPort, type MachineStatusName } from '../instance/inspect.js';
import { listProjects, projectMachineNames } from '../store/projects.js';

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
    for (const name of await projectMachineNames(project)) {
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

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

/**
 * `prune`: forget the projects whose directory is no longer there (Vagrant's
 * `global-status --prune`). Without it they are listed as unreadable and kept: a moved
 * project's machines still stand on their warm states and boxes, which prune keeps.
 */
export async function globalStatus(options: { home: string; prune?: boolean }): Promise<{ machines: GlobalEntry[]; unreadable: string[]; pruned: number }> {
  const { projects, pruned } = await listProjects(options.home, { forgetMissing: options.prune === true });
  const machines: GlobalEntry[] = [];
  const unreadable: string[] = [];
  for (const { project, vmfile, readable } of projects) {
    if (!readable) unreadable.push(project);
    if (!readable) continue;
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
  return { machines, unreadable, pruned };
}

/** Runs a machine's provisioning steps in an open session, against its record of what already ran. */
import { inspect, isRunning } from '../instance/inspect.js';
import type { AnsibleHost } from '../provision/ansible.js';
import { runSteps, type ProvisionMode } from '../provision/runner.js';
import type { SshSession } from '../ssh/client.js';
import type { MachinePaths } from '../store/layout.js';
import type { MachineState } from '../store/machine.js';
import { readRecord } from '../store/provision-record.js';
import type { Reporter } from '../ui/reporter.js';
import type { MachineConfig, Project } from '../vmfile/config.js';
import { openSshOptions } from './communicator.js';

export type { ProvisionMode };

export async function provisionMachine(
  target: { project: Project; machine: MachineConfig; state: MachineState; paths: MachinePaths; session: SshSession },
  mode: ProvisionMode,
  reporter: Reporter,
): Promise<number> {
  const { project, machine, state, paths, session } = target;
  return runSteps(machine.provision, mode, {
    machine: machine.name,
    user: state.user,
    projectDir: project.dir,
    session,
    reporter,
    recordPath: paths.provisioned,
    record: await readRecord(paths.provisioned),
    ansibleHosts: () => ansibleHosts(project),
  });
}

/** Every running machine of the Vmfile, with the pinned options that reach it. */
async function ansibleHosts(project: Project): Promise<AnsibleHost[]> {
  const hosts: AnsibleHost[] = [];
  for (const machine of project.machines) {
    const current = await inspect(project.dir, machine.name);
    if (isRunning(current)) hosts.push({ name: machine.name, sshOptions: openSshOptions(current.paths, current.state, current.state.sshPort) });
  }
  return hosts;
}

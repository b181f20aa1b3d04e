/** Runs a machine's provisioning steps in an open session, against its record of what already ran. */
import { inspectIn, isRunning } from '../instance/inspect.js';
import type { AnsibleHost } from '../provision/ansible.js';
import { changedSteps, runSteps, type ProvisionMode } from '../provision/runner.js';
import type { SshSession } from '../ssh/client.js';
import { shellQuote } from '../ssh/quote.js';
import type { MachinePaths } from '../store/layout.js';
import type { MachineState } from '../store/machine.js';
import { readRecord, type ProvisionRecord } from '../store/provision-record.js';
import { recordStepOutputs } from '../store/lockfile.js';
import type { Reporter } from '../ui/reporter.js';
import type { MachineConfig, Project } from '../vmfile/config.js';
import { openSshOptions } from './openssh.js';

export type { ProvisionMode };

export async function provisionMachine(
  target: { project: Project; machine: MachineConfig; state: MachineState; paths: MachinePaths; session: SshSession },
  mode: ProvisionMode,
  reporter: Reporter,
): Promise<number> {
  const { project, machine, state, paths, session } = target;
  const record = await readRecord(paths.provisioned);
  if (mode.kind === 'boot') await reportChangedSteps(project, machine, record, reporter);
  return runSteps(machine.provision, mode, {
    machine: machine.name,
    user: state.user,
    projectDir: project.dir,
    session,
    reporter,
    recordPath: paths.provisioned,
    record,
    ansibleHosts: () => ansibleHosts(project),
    onOutputs: async (step, outputs) => {
      const changes = await recordStepOutputs(project.dir, machine.name, step.name, outputs);
      const count = Object.keys(outputs).length;
      if (changes === undefined) reporter.notice(`machine "${machine.name}": step "${step.name}" made ${count} output${count === 1 ? '' : 's'}, but Vmfile.lock does not name the machine, so they are not recorded`);
      else if (changes.length > 0) reporter.notice(`machine "${machine.name}": step "${step.name}": outputs differ from Vmfile.lock (now recorded):\n${changes.map((change) => `  - ${change}`).join('\n')}`);
    },
  });
}

/**
 * A once step is not run again by itself when it changes (it may not be safe to repeat);
 * vmup says which changed and how to run them.
 */
export async function reportChangedSteps(project: Project, machine: MachineConfig, record: ProvisionRecord, reporter: Reporter): Promise<void> {
  const changed = await changedSteps(machine.provision, record, project.dir);
  if (changed.length === 0) return;
  const which = project.machines.length > 1 ? ` ${machine.name}` : '';
  reporter.notice(
    `machine "${machine.name}": ${changed.length === 1 ? 'a once step has' : `${changed.length} once steps have`} changed since ${changed.length === 1 ? 'it' : 'they'} ran:\n` +
      changed.map(({ step, ranAt }) => `  - "${step.name}" (ran ${ranAt})`).join('\n') +
      `\n  vmup --provision runs the steps again; vmfile provision${which} ${changed.map(({ step }) => `--step ${shellQuote(step.id)}`).join(' ')} runs only ${changed.length === 1 ? 'this one' : 'these'}`,
  );
}

/** Every running machine of the Vmfile, with the pinned options that reach it. */
async function ansibleHosts(project: Project): Promise<AnsibleHost[]> {
  const hosts: AnsibleHost[] = [];
  for (const machine of project.machines) {
    const current = await inspectIn(project, machine.name);
    if (isRunning(current)) hosts.push({ name: machine.name, sshOptions: openSshOptions(current.paths, current.state, current.state.sshPort, current.driver.sshHop()) });
  }
  return hosts;
}

/** Runs a machine's provisioning steps in an open session, against its record of what already ran. */
import { inspectIn, isRunning } from '../instance/inspect.js';
import type { AnsibleHost } from '../provision/ansible.js';
import { fetchMissingPins, recipeSources, stagePinnedSource } from '../provision/pinned-source.js';
import { changedSteps, runSteps, type ProvisionMode } from '../provision/runner.js';
import { pinInstalled, type Installed } from '../provision/step-packages.js';
import type { SshSession } from '../ssh/client.js';
import { shellQuote } from '../ssh/quote.js';
import type { MachinePaths } from '../store/layout.js';
import type { MachineState } from '../store/machine.js';
import { readRecord, type ProvisionRecord } from '../store/provision-record.js';
import { readLockFile, recordStepOutputs, recordStepPackages } from '../store/lockfile.js';
import type { Reporter } from '../ui/reporter.js';
import type { MachineConfig, Project } from '../vmfile/config.js';
import type { DebRef } from '../vmfile/deb-ref.js';
import { pinnedStepPackages } from '../vmfile/lock-steps.js';
import type { ProvisionStep } from '../vmfile/steps.js';
import { openSshOptions } from './openssh.js';

export type { ProvisionMode };

export async function provisionMachine(
  target: { project: Project; machine: MachineConfig; state: MachineState; paths: MachinePaths; session: SshSession },
  mode: ProvisionMode,
  context: { reporter: Reporter; home: string },
): Promise<number> {
  const { project, machine, state, paths, session } = target;
  const { reporter } = context;
  const record = await readRecord(paths.provisioned);
  if (mode.kind === 'boot') await reportChangedSteps(project, machine, record, reporter);
  const entry = (await readLockFile(project.dir)).machines[machine.name];
  const pinned = pinnedStepPackages(entry);
  const recipe = entry?.recipe?.name;
  return runSteps(machine.provision, mode, {
    machine: machine.name,
    user: state.user,
    projectDir: project.dir,
    session,
    reporter,
    recordPath: paths.provisioned,
    record,
    ansibleHosts: () => ansibleHosts(project),
    ...(pinned.length === 0 ? {} : { beforeSteps: () => givePinned(target, pinned, { ...context, recipe }) }),
    onInstalled: (step, changed) => recordInstalled(target, step, changed, { ...context, known: pinned }),
    onOutputs: async (step, outputs) => {
      const changes = await recordStepOutputs(project.dir, machine.name, step.name, outputs);
      const count = Object.keys(outputs).length;
      if (changes === undefined) reporter.notice(`machine "${machine.name}": step "${step.name}" made ${count} output${count === 1 ? '' : 's'}, but Vmfile.lock does not name the machine, so they are not recorded`);
      else if (changes.length > 0) reporter.notice(`machine "${machine.name}": step "${step.name}": outputs differ from Vmfile.lock (now recorded):\n${changes.map((change) => `  - ${change}`).join('\n')}`);
    },
  });
}

/** The lock's packages for the machine's steps, as an apt source in the guest; those this host lacks are named. */
async function givePinned(target: { machine: MachineConfig; session: SshSession }, pinned: readonly DebRef[], context: { reporter: Reporter; home: string; recipe: string | undefined }): Promise<void> {
  const name = target.machine.name;
  await fetchMissingPins(pinned, { home: context.home, sources: await recipeSources(context.recipe), reporter: context.reporter, label: name });
  const phase = context.reporter.phase(name, `Giving the guest the ${pinned.length} packages Vmfile.lock pins for its steps`);
  const { missing } = await stagePinnedSource(target.session, pinned, { home: context.home, where: `machine "${name}"` });
  phase.done();
  if (missing.length > 0) {
    context.reporter.notice(
      `machine "${name}": ${missing.length} of the packages Vmfile.lock pins for its steps are not in this host's package store, so its steps get them from the mirror, unpinned:\n${missing.slice(0, 10).map((line) => `  - ${line}`).join('\n')}${missing.length > 10 ? `\n  and ${missing.length - 10} more` : ''}\n` +
        '  to pin them here: vmfile lock export --output packages.tar on the host that wrote the lock, then vmfile lock import packages.tar here',
    );
  }
}

/** Takes what a step installed into the package store and records it in the lock under the step. */
async function recordInstalled(target: { project: Project; machine: MachineConfig; session: SshSession }, step: ProvisionStep, changed: Installed[], context: { reporter: Reporter; home: string; known: readonly DebRef[] }): Promise<void> {
  if (changed.length === 0) return;
  const where = `machine "${target.machine.name}": step "${step.name}"`;
  // vmup writes the machine's entry before any step runs; a lock without it (removed since) pins nothing, so nothing is copied.
  if ((await readLockFile(target.project.dir)).machines[target.machine.name] === undefined) {
    context.reporter.notice(`${where} installed ${changed.length} package${changed.length === 1 ? '' : 's'}, but Vmfile.lock does not name the machine, so they are not pinned (vmfile lock --update names it)`);
    return;
  }
  const install = await pinInstalled(target.session, changed, { home: context.home, known: context.known, where });
  const recorded = await recordStepPackages(target.project.dir, target.machine.name, step.name, install);
  if (recorded !== undefined && recorded.length > 0) context.reporter.notice(`${where}: Vmfile.lock now pins ${recorded.length} package${recorded.length === 1 ? '' : 's'} it installed: ${recorded.slice(0, 6).join(', ')}${recorded.length > 6 ? ', ...' : ''}`);
  if (install.unpinned.length > 0) {
    context.reporter.notice(`${where}: ${install.unpinned.length} package${install.unpinned.length === 1 ? '' : 's'} it installed could not be pinned (apt kept no file, and apt-get download found none): ${install.unpinned.slice(0, 6).join(', ')}`);
  }
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

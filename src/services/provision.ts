/** vmfile provision: run steps again on a running machine. */
import { UserError } from '../errors.js';
import { SshSession } from '../ssh/client.js';
import { withMachineLock } from '../state/lock.js';
import type { Project } from '../vmfile/config.js';
import { checkStepFiles, type ProvisionMode } from '../provision/runner.js';
import { sshTargetFor } from './communicator.js';
import { machineStatus, selectMachines, type ServiceContext } from './machine.js';
import { runProvision } from './up.js';

export interface ProvisionOptions {
  project: Project;
  machines?: readonly string[];
  /** Only these steps (by name), whatever their `run` policy. */
  steps?: readonly string[];
}

export async function provision(options: ProvisionOptions, context: ServiceContext): Promise<{ machine: string; stepsRun: number }[]> {
  const results = [];
  for (const machine of selectMachines(options.project, options.machines)) {
    const unknown = (options.steps ?? []).filter((name) => !machine.provision.some((step) => step.id === name));
    if (unknown.length > 0) {
      throw new UserError(`machine "${machine.name}" has no provisioning step named ${unknown.map((n) => `"${n}"`).join(', ')}`, {
        hint: `its steps: ${machine.provision.map((step) => step.id).join(', ') || 'none'}`,
      });
    }
    await checkStepFiles(machine.provision, options.project.dir, machine.name);
    const current = await machineStatus(options.project.dir, machine.name);
    if (current.status !== 'running' || current.state?.sshPort === undefined) {
      throw new UserError(`machine "${machine.name}" is not running`, { hint: 'vmup runs provisioning as it boots' });
    }
    const state = current.state;
    const port = state.sshPort ?? 0;
    const mode: ProvisionMode = options.steps !== undefined && options.steps.length > 0 ? { kind: 'only', names: options.steps } : { kind: 'all' };
    const stepsRun = await withMachineLock(current.paths.lock, machine.name, 'provision', async () => {
      const session = await SshSession.connect(await sshTargetFor(current.paths, state, port));
      try {
        return await runProvision(options.project, machine, state, current.paths, session, mode, context);
      } finally {
        session.close();
      }
    });
    results.push({ machine: machine.name, stepsRun });
  }
  return results;
}

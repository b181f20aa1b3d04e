/** vmfile provision: run steps again on running machines, one machine after another. */
import { UserError } from '../errors.js';
import { provisionMachine, type ProvisionMode } from '../guest/provisioner.js';
import { withRunningMachine } from '../guest/running.js';
import type { ServiceContext } from '../instance/context.js';
import { forEachMachine } from '../instance/fanout.js';
import { selectMachines } from '../instance/select.js';
import { checkStepFiles } from '../provision/runner.js';
import type { Project } from '../vmfile/config.js';

export interface ProvisionOptions {
  project: Project;
  machines?: readonly string[];
  /** Only these steps (by name), whatever their `run` policy. */
  steps?: readonly string[];
}

export async function provision(options: ProvisionOptions, context: ServiceContext): Promise<{ machine: string; stepsRun: number }[]> {
  const machines = selectMachines(options.project, options.machines);
  for (const machine of machines) {
    const unknown = (options.steps ?? []).filter((name) => !machine.provision.some((step) => step.id === name));
    if (unknown.length > 0) {
      throw new UserError(`machine "${machine.name}" has no provisioning step named ${unknown.map((n) => `"${n}"`).join(', ')}`, {
        hint: `its steps: ${machine.provision.map((step) => step.id).join(', ') || 'none'}`,
      });
    }
    await checkStepFiles(machine.provision, options.project.dir, machine.name);
  }
  const mode: ProvisionMode = options.steps !== undefined && options.steps.length > 0 ? { kind: 'only', names: options.steps } : { kind: 'all' };
  return forEachMachine(
    machines,
    async (machine) => {
      const stepsRun = await withRunningMachine(
        options.project,
        machine.name,
        (running, session) => provisionMachine({ project: options.project, machine, state: running.state, paths: running.paths, session }, mode, context),
        { lock: 'provision', hint: 'vmup runs provisioning as it boots' },
      );
      return { machine: machine.name, stepsRun };
    },
    { parallel: false, succeeded: 'provisioned', retry: 'fix the failures above, then run vmfile provision again' },
  );
}

/** vmfile reload: a clean halt, then vmup, so changed CPUs and memory take effect. */
import { UserError } from '../errors.js';
import type { Project } from '../vmfile/config.js';
import { halt } from './halt.js';
import { machineStatus, selectMachines, type ServiceContext } from './machine.js';
import { up, type UpResult } from './up.js';

export async function reload(
  options: { project: Project; machines?: readonly string[]; provision: 'boot' | 'all' | 'none'; timeout: number },
  context: ServiceContext,
): Promise<UpResult[]> {
  const machines = selectMachines(options.project, options.machines).map((machine) => machine.name);
  for (const name of machines) {
    if ((await machineStatus(options.project.dir, name)).status === 'suspended') {
      throw new UserError(`machine "${name}" is suspended; reloading would throw its saved memory away`, {
        hint: 'resume it first (vmfile resume), or discard the saved memory with vmfile halt --force',
      });
    }
  }
  await halt({ project: options.project, machines, force: false, timeout: options.timeout }, context);
  return up({ project: options.project, machines, provision: options.provision }, context);
}

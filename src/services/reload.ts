/** vmfile reload: a clean halt, then vmup, so changed CPUs and memory take effect. */
import { UserError } from '../errors.js';
import type { ServiceContext } from '../instance/context.js';
import { forEachMachine } from '../instance/fanout.js';
import { inspectIn } from '../instance/inspect.js';
import { selectMachines } from '../instance/select.js';
import { haltMachine } from '../lifecycle/stop.js';
import { upMachines, type UpResult } from '../lifecycle/up.js';
import type { Project } from '../vmfile/config.js';

export async function reload(
  options: { project: Project; machines?: readonly string[]; provision: 'boot' | 'all' | 'none'; timeout: number },
  context: ServiceContext,
): Promise<UpResult[]> {
  const machines = selectMachines(options.project, options.machines);
  for (const machine of machines) {
    if ((await inspectIn(options.project, machine.name)).status === 'suspended') {
      throw new UserError(`machine "${machine.name}" is suspended; reloading would throw its saved memory away`, {
        hint: 'resume it first (vmfile resume), or discard the saved memory with vmfile halt --force',
      });
    }
  }
  await forEachMachine(machines, (machine) => haltMachine(options.project, machine.name, { force: false, timeout: options.timeout }, context.reporter), {
    parallel: true,
    succeeded: 'halted',
    retry: 'nothing was started again; vmfile halt --force stops a machine that does not shut down, then vmfile reload',
  });
  return upMachines({ project: options.project, machines: machines.map((machine) => machine.name), provision: options.provision }, context);
}

/** Destroying machines (vmfile destroy, and vmfile reproduce after its check): stop the machine if it runs and remove its state; the box stays. A broken machine is cleared too. */
import { counted } from '../ui/words.js';
import type { ServiceContext } from '../instance/context.js';
import { forEachMachine } from '../instance/fanout.js';
import { withMachine } from '../instance/locked.js';
import { selectMachines } from '../instance/select.js';
import { forgetMachineUse } from '../store/projects.js';
import type { Project } from '../vmfile/config.js';

export interface DestroyOptions {
  project: Project;
  machines?: readonly string[];
}

export interface DestroyResult {
  machine: string;
  outcome: 'not created' | 'destroyed';
  snapshots?: number;
}

export async function destroyMachines(options: DestroyOptions, context: ServiceContext): Promise<DestroyResult[]> {
  return forEachMachine(
    selectMachines(options.project, options.machines),
    (machine) =>
      withMachine(
        options.project,
        machine.name,
        'destroy',
        async (current): Promise<DestroyResult> => {
          if (current.status === 'not created' && current.state === undefined) {
            // Leftovers of a creation cut short (keys, a disk without a record): a create
            // makes the machine's directory before anything else, here or on a libvirt host.
            await current.driver.destroy();
            await forgetMachineUse(context.home, options.project.dir, machine.name);
            context.reporter.info(machine.name, 'not created; nothing to destroy');
            return { machine: machine.name, outcome: 'not created' };
          }
          const snapshots = current.status === 'broken' ? 0 : (await current.driver.listSnapshots().catch(() => [])).length;
          await current.driver.destroy();
          await forgetMachineUse(context.home, options.project.dir, machine.name);
          context.reporter.info(machine.name, `destroyed${snapshots === 0 ? '' : ` with its ${counted(snapshots, 'snapshot')}`} (the box is kept)`);
          return { machine: machine.name, outcome: 'destroyed', snapshots };
        },
      ),
    { parallel: false, succeeded: 'destroyed', retry: 'fix the failures above and run vmfile destroy again' },
  );
}

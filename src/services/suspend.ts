/**
 * vmfile suspend and resume. Suspend saves the running machine's memory into its disk
 * and stops QEMU, so it uses no CPU or RAM; the record says so before QEMU stops, and a
 * failed save leaves the machine running (see Driver.suspend). Resume is vmup for the
 * suspended machines (lifecycle/start.ts continues them from the saved memory).
 */
import { UserError } from '../errors.js';
import type { ServiceContext } from '../instance/context.js';
import { forEachMachine } from '../instance/fanout.js';
import { describeStatus, inspectIn } from '../instance/inspect.js';
import { selectMachines } from '../instance/select.js';
import { upMachines, type UpResult } from '../lifecycle/up.js';
import { withMachine } from '../instance/locked.js';
import { writeMachineState } from '../store/machine.js';
import { inPhase } from '../ui/reporter.js';
import type { Project } from '../vmfile/config.js';
import { refuseLiveFs } from '../lifecycle/saved-state.js';

export interface SuspendResult {
  machine: string;
  outcome: 'suspended' | 'already suspended';
  seconds: number;
}

export async function suspend(options: { project: Project; machines?: readonly string[] }, context: ServiceContext): Promise<SuspendResult[]> {
  return forEachMachine(
    selectMachines(options.project, options.machines),
    async (machine): Promise<SuspendResult> => {
      return withMachine(options.project, machine.name, 'suspend', async (current) => {
        if (current.status === 'suspended') {
          context.reporter.info(machine.name, 'is already suspended');
          return { machine: machine.name, outcome: 'already suspended', seconds: 0 };
        }
        const state = current.state;
        if (current.status !== 'running' || state === undefined) {
          throw new UserError(`machine "${machine.name}" ${describeStatus(current)}; only a running machine can be suspended`, { hint: 'start it with: vmup' });
        }
        refuseLiveFs(current, 'suspend');
        const started = performance.now();
        await inPhase(context.reporter, machine.name, 'Saving memory to disk and stopping QEMU', () =>
          current.driver.suspend(() => writeMachineState(current.paths.state, { ...state, suspendedAt: new Date().toISOString() })),
        );
        return { machine: machine.name, outcome: 'suspended', seconds: (performance.now() - started) / 1000 };
      });
    },
    { parallel: false, succeeded: 'suspended', retry: 'the machines that failed are still running as they were' },
  );
}

/** vmfile resume: continue suspended machines (the others are left alone). */
export async function resume(options: { project: Project; machines?: readonly string[] }, context: ServiceContext): Promise<UpResult[]> {
  const suspended = [];
  for (const machine of selectMachines(options.project, options.machines)) {
    const current = await inspectIn(options.project, machine.name);
    if (current.status === 'suspended') suspended.push(machine.name);
    else context.reporter.info(machine.name, `${describeStatus(current)}, not suspended; nothing to resume`);
  }
  if (suspended.length === 0) return [];
  return upMachines({ project: options.project, machines: suspended, provision: 'none' }, context);
}

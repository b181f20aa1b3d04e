/**
 * vmfile suspend: save the running machine's memory into its disk (an internal
 * snapshot reserved for this) and stop QEMU, so it uses no CPU or RAM. vmup or
 * vmfile resume continues it (see resume in up.ts). QEMU is stopped only after the
 * save succeeded: a failed save leaves the machine running as it was.
 */
import { UserError } from '../errors.js';
import { hmpQuiet, withQmp } from '../qmp/session.js';
import { SUSPEND_SNAPSHOT } from '../state/layout.js';
import { withMachineLock } from '../state/lock.js';
import { writeJsonAtomic } from '../state/machine.js';
import { inPhase } from '../ui/reporter.js';
import type { Project } from '../vmfile/config.js';
import { markHalted, stopQemu } from './halt.js';
import { machineStatus, selectMachines, type ServiceContext } from './machine.js';
import { refuseLiveFs } from './snapshot.js';
import { up, type UpResult } from './up.js';

export async function suspend(options: { project: Project; machines?: readonly string[] }, context: ServiceContext): Promise<{ machine: string; seconds: number }[]> {
  const results = [];
  for (const machine of selectMachines(options.project, options.machines)) {
    const status = await machineStatus(options.project.dir, machine.name);
    if (status.status !== 'running') {
      if (status.status === 'suspended') {
        context.reporter.info(machine.name, 'is already suspended');
        continue;
      }
      throw new UserError(`machine "${machine.name}" is ${status.status}; only a running machine can be suspended`, { hint: 'start it with: vmup' });
    }
    results.push(
      await withMachineLock(status.paths.lock, machine.name, 'suspend', async () => {
        const current = await machineStatus(options.project.dir, machine.name);
        if (current.pid === undefined || current.state === undefined) throw new UserError(`machine "${machine.name}" stopped meanwhile`);
        const { pid, state, paths } = current;
        refuseLiveFs(current, 'suspend');
        const started = performance.now();
        await inPhase(context.reporter, machine.name, 'Saving memory to disk', () =>
          withQmp(paths.qmpSocket, async (qmp) => {
            // A leftover from an interrupted suspend would make savevm overwrite silently; drop it first.
            await qmp.hmp(`delvm ${SUSPEND_SNAPSHOT}`).catch(() => '');
            await hmpQuiet(qmp, `savevm ${SUSPEND_SNAPSHOT}`, `machine "${machine.name}": save memory`);
          }),
        );
        // Recorded before QEMU stops: from here on the saved memory is the machine's state.
        await writeJsonAtomic(paths.state, { ...state, suspendedAt: new Date().toISOString() });
        await inPhase(context.reporter, machine.name, 'Stopping QEMU', () => stopQemu(paths, pid, 0));
        await markHalted(paths);
        return { machine: machine.name, seconds: (performance.now() - started) / 1000 };
      }),
    );
  }
  return results;
}

/** vmfile resume: continue suspended machines (the others are left alone). */
export async function resume(options: { project: Project; machines?: readonly string[] }, context: ServiceContext): Promise<UpResult[]> {
  const suspended = [];
  for (const machine of selectMachines(options.project, options.machines)) {
    const status = await machineStatus(options.project.dir, machine.name);
    if (status.status === 'suspended') suspended.push(machine.name);
    else context.reporter.info(machine.name, `is ${status.status}, not suspended; nothing to resume`);
  }
  if (suspended.length === 0) return [];
  return up({ project: options.project, machines: suspended, provision: 'none' }, context);
}

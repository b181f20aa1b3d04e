/** vmfile destroy: stop the machine if it runs and remove its state; the box stays. */
import { rm } from 'node:fs/promises';
import { withMachineLock } from '../state/lock.js';
import type { Project } from '../vmfile/config.js';
import { stopQemu } from './halt.js';
import { countSnapshots } from './snapshot.js';
import { machineStatus, selectMachines, type ServiceContext } from './machine.js';

export interface DestroyOptions {
  project: Project;
  machines?: readonly string[];
}

export interface DestroyResult {
  machine: string;
  outcome: 'not created' | 'destroyed';
  snapshots?: number;
}

export async function destroy(options: DestroyOptions, context: ServiceContext): Promise<DestroyResult[]> {
  const results: DestroyResult[] = [];
  for (const machine of selectMachines(options.project, options.machines)) {
    const status = await machineStatus(options.project.dir, machine.name);
    if (status.status === 'not created' && status.state === undefined) {
      await rm(status.paths.dir, { recursive: true, force: true });
      context.reporter.info(machine.name, 'not created; nothing to destroy');
      results.push({ machine: machine.name, outcome: 'not created' });
      continue;
    }
    let snapshots = 0;
    await withMachineLock(status.paths.lock, machine.name, 'destroy', async () => {
      const fresh = await machineStatus(options.project.dir, machine.name);
      snapshots = await countSnapshots(fresh);
      if (fresh.pid !== undefined) await stopQemu(fresh.paths, fresh.pid, 0);
      await rm(fresh.paths.qmpSocket, { force: true });
      // The lock file lives in the directory; withMachineLock's release tolerates its absence.
      await rm(fresh.paths.dir, { recursive: true, force: true });
    });
    context.reporter.info(machine.name, `destroyed with its ${snapshots === 1 ? '1 snapshot' : `${snapshots} snapshots`} (the box is kept)`);
    results.push({ machine: machine.name, outcome: 'destroyed', snapshots });
  }
  return results;
}

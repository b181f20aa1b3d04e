/**
 * One operation on one machine at a time, and one inspection of it per command: the
 * machine's lock is taken first, and the machine is inspected under it, so what the
 * operation sees cannot change under it and is never asked twice.
 */
import { pathExists } from '../store/exists.js';
import { machinePaths } from '../store/layout.js';
import { withMachineLock } from '../store/lock.js';
import type { Project } from '../vmfile/config.js';
import { inspectIn, type Instance } from './inspect.js';

/**
 * Runs `fn` with the machine inspected under its lock. A machine whose directory was
 * never made has nothing to hold a lock in: it is inspected (not created) without one.
 */
export async function withMachine<T>(project: Project, name: string, operation: string, fn: (machine: Instance) => Promise<T>): Promise<T> {
  const paths = machinePaths(project.dir, name);
  if (!(await pathExists(paths.dir))) return fn(await inspectIn(project, name));
  return withMachineLock(paths.lock, name, operation, async () => fn(await inspectIn(project, name)));
}

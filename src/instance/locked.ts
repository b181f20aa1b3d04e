/**
 * One operation on one machine at a time, and one inspection of it per command: the
 * machine's lock is taken first, and the machine is inspected under it, so what the
 * operation sees cannot change under it and is never asked twice.
 */
import { pathExists } from '../store/exists.js';
import { machinePaths } from '../store/layout.js';
import { withMachineLock } from '../store/lock.js';
import type { MachineProvider } from '../vmfile/config.js';
import { inspect, type Instance } from './inspect.js';

/**
 * Runs `fn` with the machine inspected under its lock. A machine whose directory was
 * never made has nothing to hold a lock in: it is inspected (not created) without one.
 */
export async function withMachine<T>(projectDir: string, name: string, operation: string, fn: (machine: Instance) => Promise<T>, provider?: MachineProvider): Promise<T> {
  const paths = machinePaths(projectDir, name);
  if (!(await pathExists(paths.dir))) return fn(await inspect(projectDir, name, provider));
  return withMachineLock(paths.lock, name, operation, async () => fn(await inspect(projectDir, name, provider)));
}

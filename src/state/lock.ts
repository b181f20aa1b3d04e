/**
 * One operation at a time per machine. The lock file holds the owner's pid and what it
 * is doing; a lock whose owner is gone (killed, crashed) is taken over, so a fault never
 * leaves a machine locked for good.
 */
import { open, readFile, rm } from 'node:fs/promises';
import { BusyError } from '../errors.js';

interface LockOwner {
  pid: number;
  operation: string;
  since: string;
}

export async function withMachineLock<T>(lockPath: string, machine: string, operation: string, fn: () => Promise<T>): Promise<T> {
  await acquire(lockPath, machine, operation);
  try {
    return await fn();
  } finally {
    await rm(lockPath, { force: true });
  }
}

async function acquire(lockPath: string, machine: string, operation: string): Promise<void> {
  const owner: LockOwner = { pid: process.pid, operation, since: new Date().toISOString() };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const handle = await open(lockPath, 'wx', 0o600);
      await handle.writeFile(JSON.stringify(owner));
      await handle.close();
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const current = await readOwner(lockPath);
    if (current !== undefined && current.pid !== process.pid && isAlive(current.pid)) {
      throw new BusyError(`machine "${machine}" is busy: another vmfile (pid ${current.pid}) is running "${current.operation}" since ${current.since}`, {
        hint: `wait for it to finish, then run "${operation}" again`,
      });
    }
    await rm(lockPath, { force: true });
  }
  throw new BusyError(`machine "${machine}": could not take its lock ${lockPath}`, { hint: 'try again' });
}

async function readOwner(lockPath: string): Promise<LockOwner | undefined> {
  try {
    const parsed: unknown = JSON.parse(await readFile(lockPath, 'utf8'));
    if (typeof parsed === 'object' && parsed !== null && 'pid' in parsed && typeof parsed.pid === 'number') {
      const record = parsed as Partial<LockOwner>;
      return { pid: parsed.pid, operation: String(record.operation ?? 'an operation'), since: String(record.since ?? '?') };
    }
  } catch {
    // Unreadable or half-written: treat as stale.
  }
  return undefined;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

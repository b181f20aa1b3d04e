/**
 * One operation at a time per machine. The lock file holds the owner's pid and what it
 * is doing. It is made complete in a temporary file and hard-linked into place, so it is
 * never seen half-written; a lock whose owner has died (killed, crashed) is moved aside
 * and taken over, so a fault never leaves a machine locked for good.
 */
import { randomBytes } from 'node:crypto';
import { link, readFile, rename, rm, writeFile } from 'node:fs/promises';
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
  const candidate = `${lockPath}.${process.pid}.${randomBytes(4).toString('hex')}`;
  await writeFile(candidate, JSON.stringify(owner), { mode: 0o600 });
  try {
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        await link(candidate, lockPath);
        return;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const current = await readOwner(lockPath);
      if (current === undefined) continue; // released meanwhile
      if (isAlive(current.pid)) {
        throw new BusyError(`machine "${machine}" is busy: ${current.pid === process.pid ? 'this process' : `another vmfile (pid ${current.pid})`} is running "${current.operation}" since ${current.since}`, {
          hint: `wait for it to finish, then run "${operation}" again`,
        });
      }
      await takeOverStale(lockPath, current.pid);
    }
    throw new BusyError(`machine "${machine}": could not take its lock ${lockPath}`, { hint: 'try again' });
  } finally {
    await rm(candidate, { force: true });
  }
}

/** Moves a dead owner's lock aside; if another process took it over first, puts nothing back. */
async function takeOverStale(lockPath: string, deadPid: number): Promise<void> {
  const aside = `${lockPath}.stale.${process.pid}`;
  try {
    await rename(lockPath, aside);
  } catch {
    return; // someone else moved it
  }
  const moved = await readOwner(aside);
  if (moved !== undefined && moved.pid !== deadPid && isAlive(moved.pid)) {
    // We moved a live owner's fresh lock: restore it, unless a third process locked meanwhile.
    await link(aside, lockPath).catch(() => undefined);
  }
  await rm(aside, { force: true });
}

async function readOwner(lockPath: string): Promise<LockOwner | undefined> {
  try {
    const parsed: unknown = JSON.parse(await readFile(lockPath, 'utf8'));
    if (typeof parsed === 'object' && parsed !== null && 'pid' in parsed && typeof parsed.pid === 'number') {
      const record = parsed as Partial<LockOwner>;
      return { pid: parsed.pid, operation: String(record.operation ?? 'an operation'), since: String(record.since ?? '?') };
    }
    // Never half-written (see header), so unreadable content means a foreign file: stale.
    return { pid: -1, operation: 'unknown', since: '?' };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return { pid: -1, operation: 'unknown', since: '?' };
  }
}

function isAlive(pid: number): boolean {
  if (pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

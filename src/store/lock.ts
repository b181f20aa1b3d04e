/**
 * One operation at a time per machine (and per project, for the network switch).
 *
 * The lock file names its owner: pid, the process's start time (so a reused pid is not
 * mistaken for the owner), a random token (so a process only ever removes its own
 * lock), the operation and since when. It is written whole to a private name and
 * hard-linked into place, so it is never seen half-written.
 *
 * A lock whose owner is gone is taken over. Taking over is a read-then-replace, so two
 * processes could both judge the same lock stale; they settle it through a takeover
 * guard, itself a hard-linked file that only one of them can create. The guard is held
 * for two file operations; one left by a process killed in between is cleared once it
 * is older than GUARD_STALE_MS.
 */
import { randomBytes } from 'node:crypto';
import { link, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { BusyError, UserError } from '../errors.js';
import { processAlive, processStartTime } from './process.js';

interface LockOwner {
  pid: number;
  /** Start time of the process, in clock ticks since boot (/proc/PID/stat field 22). */
  start?: string;
  token?: string;
  operation: string;
  since: string;
}

const GUARD_STALE_MS = 5000;

export async function withMachineLock<T>(lockPath: string, machine: string, operation: string, fn: () => Promise<T>): Promise<T> {
  // The lock lives in the machine's directory: without one, the machine was never created (or was destroyed meanwhile).
  const notCreated = () => new UserError(`machine "${machine}" is not created, so there is nothing to ${operation}`, { hint: 'vmup creates it' });
  return withLock(lockPath, `machine "${machine}"`, operation, fn, { whenNoDirectory: notCreated });
}

/**
 * `what` names the thing locked in messages: 'machine "web"', 'the private network of
 * /src/app'. With `waitMs`, a busy lock is waited for (up to that long) instead of refused.
 * `whenNoDirectory` is the error when the lock's directory does not exist.
 */
export async function withLock<T>(lockPath: string, what: string, operation: string, fn: () => Promise<T>, options: { waitMs?: number; whenNoDirectory?: () => Error } = {}): Promise<T> {
  const start = await processStartTime(process.pid);
  const owner: LockOwner = { pid: process.pid, ...(start === undefined ? {} : { start }), token: randomBytes(8).toString('hex'), operation, since: new Date().toISOString() };
  const deadline = Date.now() + (options.waitMs ?? 0);
  for (;;) {
    try {
      await acquire(lockPath, what, owner);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT' && options.whenNoDirectory !== undefined) throw options.whenNoDirectory();
      if (!(error instanceof BusyError) || Date.now() >= deadline) throw error;
      await sleep(50);
    }
  }
  try {
    return await fn();
  } finally {
    await releaseOwn(lockPath, owner);
  }
}

async function acquire(lockPath: string, what: string, owner: LockOwner): Promise<void> {
  const candidate = `${lockPath}.${owner.token ?? ''}`;
  await writeFile(candidate, JSON.stringify(owner), { mode: 0o600 });
  try {
    for (let attempt = 0; attempt < 20; attempt++) {
      try {
        await link(candidate, lockPath);
        return;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const current = await readOwner(lockPath);
      if (current === undefined) continue; // released meanwhile
      if (await isAlive(current)) {
        const who = current.pid === process.pid ? 'this process' : `another vmfile (pid ${current.pid})`;
        throw new BusyError(`${what} is busy: ${who} is running "${current.operation}" since ${current.since}`, {
          hint: `wait for it to finish, then run "${owner.operation}" again`,
        });
      }
      if (await takeOver(lockPath, current, candidate)) return;
    }
    throw new BusyError(`${what}: could not take its lock ${lockPath}`, { hint: 'try again' });
  } finally {
    await rm(candidate, { force: true });
  }
}

/** Replaces the stale lock of `dead` with ours, unless another process got there first. */
async function takeOver(lockPath: string, dead: LockOwner, candidate: string): Promise<boolean> {
  const guard = `${lockPath}.takeover`;
  try {
    await link(candidate, guard);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    await clearStaleGuard(guard);
    await sleep(5 + Math.random() * 20);
    return false;
  }
  try {
    // Only the guard holder gets here. Is the lock still the one judged stale?
    const current = await readOwner(lockPath);
    if (current !== undefined && !sameOwner(current, dead)) return false;
    await rm(lockPath, { force: true });
    await link(candidate, lockPath);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    await rm(guard, { force: true });
  }
}

async function clearStaleGuard(guard: string): Promise<void> {
  const info = await stat(guard).catch(() => undefined);
  if (info !== undefined && Date.now() - info.mtimeMs > GUARD_STALE_MS) await rm(guard, { force: true });
}

/** Removes the lock only if it is still ours (a lock taken over from a process judged dead is not). */
async function releaseOwn(lockPath: string, owner: LockOwner): Promise<void> {
  const current = await readOwner(lockPath);
  if (current !== undefined && sameOwner(current, owner)) await rm(lockPath, { force: true });
}

function sameOwner(a: LockOwner, b: LockOwner): boolean {
  return a.pid === b.pid && a.token === b.token && a.since === b.since;
}

async function readOwner(lockPath: string): Promise<LockOwner | undefined> {
  try {
    const parsed: unknown = JSON.parse(await readFile(lockPath, 'utf8'));
    if (typeof parsed === 'object' && parsed !== null && 'pid' in parsed && typeof parsed.pid === 'number') {
      const record = parsed as Partial<LockOwner>;
      return {
        pid: parsed.pid,
        ...(typeof record.start === 'string' ? { start: record.start } : {}),
        ...(typeof record.token === 'string' ? { token: record.token } : {}),
        operation: String(record.operation ?? 'an operation'),
        since: String(record.since ?? '?'),
      };
    }
    // Never half-written (see header), so unreadable content means a foreign file: stale.
    return { pid: -1, operation: 'unknown', since: '?' };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return { pid: -1, operation: 'unknown', since: '?' };
  }
}

/** Whether the owner still runs: its pid exists and, when the lock recorded it, started when the owner did. */
function isAlive(owner: LockOwner): Promise<boolean> {
  return processAlive(owner.pid, owner.start);
}

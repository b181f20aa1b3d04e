import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { BusyError } from '../../../src/errors.js';
import { withMachineLock } from '../../../src/store/lock.js';
import { tempDir } from '../temp-dir.js';

const children: ChildProcess[] = [];

afterEach(() => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
});

/** A live process that is not this one, to own a lock. */
function otherLiveProcess(): number {
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  children.push(child);
  if (child.pid === undefined) throw new Error('could not start sleep');
  return child.pid;
}

/** The pid of a process that has exited (and been reaped), so it is free. */
function exitedPid(): number {
  const result = spawnSync('sh', ['-c', 'echo $$'], { encoding: 'utf8' });
  return Number(result.stdout.trim());
}

async function gone(path: string): Promise<boolean> {
  return stat(path).then(
    () => false,
    () => true,
  );
}

describe('withMachineLock', () => {
  test('holds a lock file naming this process and the operation while fn runs, and removes it after', async () => {
    const lock = join(await tempDir(), 'lock');

    const seen = await withMachineLock(lock, 'web', 'up', async () => JSON.parse(await readFile(lock, 'utf8')) as unknown);

    expect(seen).toMatchObject({ pid: process.pid, operation: 'up' });
    expect(await gone(lock)).toBe(true);
  });

  test('returns what fn returns', async () => {
    const lock = join(await tempDir(), 'lock');
    await expect(withMachineLock(lock, 'web', 'status', async () => 42)).resolves.toBe(42);
  });

  test('removes the lock file when fn throws, and passes the error on', async () => {
    const lock = join(await tempDir(), 'lock');
    const failure = new Error('boom');

    await expect(withMachineLock(lock, 'web', 'up', async () => Promise.reject(failure))).rejects.toBe(failure);
    expect(await gone(lock)).toBe(true);
  });

  test('a lock held by another live process is a BusyError (exit 75) naming it and its operation', async () => {
    const lock = join(await tempDir(), 'lock');
    const pid = otherLiveProcess();
    await writeFile(lock, JSON.stringify({ pid, operation: 'provision', since: '2026-11-10T10:00:00.000Z' }));
    let ran = false;

    const error: unknown = await withMachineLock(lock, 'web', 'halt', async () => {
      ran = true;
    }).catch((reason: unknown) => reason);

    expect(error).toBeInstanceOf(BusyError);
    if (!(error instanceof BusyError)) return;
    expect(error.exitCode).toBe(75);
    expect(error.message).toBe(`machine "web" is busy: another vmfile (pid ${pid}) is running "provision" since 2026-11-10T10:00:00.000Z`);
    expect(error.hint).toBe('wait for it to finish, then run "halt" again');
    expect(ran).toBe(false);
    // The other process's lock is left alone.
    expect(JSON.parse(await readFile(lock, 'utf8'))).toMatchObject({ pid, operation: 'provision' });
  });

  test('a lock whose owner has exited is taken over', async () => {
    const lock = join(await tempDir(), 'lock');
    await writeFile(lock, JSON.stringify({ pid: exitedPid(), operation: 'up', since: '2026-11-10T10:00:00.000Z' }));

    const owner = await withMachineLock(lock, 'web', 'destroy', async () => JSON.parse(await readFile(lock, 'utf8')) as unknown);

    expect(owner).toMatchObject({ pid: process.pid, operation: 'destroy' });
    expect(await gone(lock)).toBe(true);
  });
});

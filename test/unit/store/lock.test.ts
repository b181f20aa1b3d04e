import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { BusyError, UserError } from '../../../src/errors.js';
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

/** Runs `rounds` rounds; in each, `contenders` acquire at once and the holders' critical sections must never overlap. */
async function contend(lock: string, contenders: number, rounds: number, stale: () => Promise<void>): Promise<{ held: number[]; overlaps: number }> {
  let inside = 0;
  let overlaps = 0;
  const held: number[] = [];
  for (let round = 0; round < rounds; round++) {
    await stale();
    const outcomes = await Promise.allSettled(
      Array.from({ length: contenders }, (_, index) =>
        withMachineLock(lock, 'web', `contender ${index}`, async () => {
          inside++;
          if (inside > 1) overlaps++;
          await new Promise((resolve) => setTimeout(resolve, 2));
          inside--;
        }),
      ),
    );
    held.push(outcomes.filter((outcome) => outcome.status === 'fulfilled').length);
    for (const outcome of outcomes) if (outcome.status === 'rejected' && !(outcome.reason instanceof BusyError)) throw outcome.reason;
  }
  return { held, overlaps };
}

describe('withMachineLock under races', () => {
  test('50 rounds of 8 contenders taking over a dead owner\'s lock: never two holders at once', async () => {
    const lock = join(await tempDir(), 'lock');
    const dead = exitedPid();
    const { held, overlaps } = await contend(lock, 8, 50, () => writeFile(lock, JSON.stringify({ pid: dead, operation: 'up', since: 'then' })));
    expect(overlaps).toBe(0);
    // Someone always gets it; the others are refused as busy or get it after the holder let go.
    expect(held.every((count) => count >= 1)).toBe(true);
  });

  test('a pid reused by an unrelated process does not keep the lock: the start time tells them apart', async () => {
    const lock = join(await tempDir(), 'lock');
    const pid = otherLiveProcess();
    await writeFile(lock, JSON.stringify({ pid, start: '1', token: 'x', operation: 'up', since: 'then' }));
    await expect(withMachineLock(lock, 'web', 'halt', async () => 'taken over')).resolves.toBe('taken over');
  });

  test('a process removes only its own lock: one taken over from it is left to its new owner', async () => {
    const lock = join(await tempDir(), 'lock');
    await withMachineLock(lock, 'web', 'up', async () => {
      // Another owner replaced the lock meanwhile (as a takeover would).
      await writeFile(lock, JSON.stringify({ pid: process.pid, token: 'someone-else', operation: 'halt', since: 'now' }));
    });
    expect(JSON.parse(await readFile(lock, 'utf8'))).toMatchObject({ token: 'someone-else' });
  });

  test('50 rounds across 4 processes: critical sections never overlap', async () => {
    const dir = await tempDir();
    const lock = join(dir, 'lock');
    const log = join(dir, 'log');
    const script = `
      const { createJiti } = require('jiti');
      const { appendFileSync } = require('node:fs');
      const jiti = createJiti(${JSON.stringify(join(import.meta.dirname, 'x.js'))});
      (async () => {
        const { withMachineLock } = await jiti.import(${JSON.stringify(join(import.meta.dirname, '..', '..', '..', 'src', 'store', 'lock.ts'))});
        let done = 0;
        while (done < 50) {
          try {
            await withMachineLock(${JSON.stringify(lock)}, 'web', 'race', async () => {
              appendFileSync(${JSON.stringify(log)}, 'in ' + process.pid + '\\n');
              await new Promise((r) => setTimeout(r, 1));
              appendFileSync(${JSON.stringify(log)}, 'out ' + process.pid + '\\n');
            });
            done++;
          } catch (error) {
            if (error.name !== 'BusyError') throw error;
            await new Promise((r) => setTimeout(r, Math.random() * 3));
          }
        }
      })().catch((error) => { console.error(error); process.exit(1); });`;
    const runs = Array.from({ length: 4 }, () => {
      const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'ignore', 'inherit'] });
      children.push(child);
      return new Promise<number | null>((resolve) => child.once('exit', resolve));
    });
    expect(await Promise.all(runs)).toEqual([0, 0, 0, 0]);
    const lines = (await readFile(log, 'utf8')).trim().split('\n');
    expect(lines).toHaveLength(4 * 50 * 2);
    for (let index = 0; index < lines.length; index += 2) {
      const [enter, leave] = [lines[index] ?? '', lines[index + 1] ?? ''];
      expect([enter.split(' ')[0], leave.split(' ')[0], enter.split(' ')[1]]).toEqual(['in', 'out', leave.split(' ')[1]]);
    }
  }, 60_000);
});

describe('withMachineLock of a machine never created', () => {
  test('is a UserError saying so (exit 1), not ENOENT on its lock file', async () => {
    const lock = join(await tempDir(), 'machines', 'web', 'lock');
    const error = await withMachineLock(lock, 'web', 'package', async () => 42).catch((reason: unknown) => reason);
    expect(error).toBeInstanceOf(UserError);
    expect((error as UserError).message).toBe('machine "web" is not created, so there is nothing to package');
    expect((error as UserError).hint).toBe('vmup creates it');
  });
});

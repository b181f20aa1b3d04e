/** Vmfile.lock on disk: read it (missing means empty), write it whole. See vmfile/lock.ts for what it holds. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError } from '../errors.js';
import { formatLockFile, parseLockFile, type LockFile } from '../vmfile/lock.js';
import { withOutputs, withStepPackages, type StepInstall } from '../vmfile/lock-steps.js';
import { withLock } from './lock.js';
import { writeFileAtomic } from './json.js';
import { lockFilePath, projectStateDir } from './layout.js';

/** The project's lock, or an empty one when there is no Vmfile.lock yet. */
export async function readLockFile(projectDir: string): Promise<LockFile> {
  const path = lockFilePath(projectDir);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { lockVersion: 1, machines: {} };
    throw new ConfigError(`${path} cannot be read: ${(error as Error).message}`, { hint: 'Vmfile.lock must be a file; restore it from version control, or remove it and run vmfile lock --update' });
  }
  return parseLockFile(text, path);
}

/** Written whole and renamed into place: a crash never leaves half a lock. Unchanged content is not rewritten. */
export async function writeLockFile(projectDir: string, lock: LockFile): Promise<void> {
  await writeFileAtomic(lockFilePath(projectDir), formatLockFile(lock), { mode: 0o644, skipUnchanged: true });
}

/**
 * Records a step's output digests in the lock (read, changed, written whole, one writer at
 * a time: machines of one project provision side by side). Returns what changed from the
 * digests recorded before, or undefined when the lock does not name the machine.
 */
export async function recordStepOutputs(projectDir: string, machine: string, step: string, outputs: Record<string, string>): Promise<string[] | undefined> {
  return changeLock(projectDir, 'record step outputs', (lock) => {
    const updated = withOutputs(lock, machine, step, outputs);
    return updated === undefined ? undefined : { lock: updated.lock, result: updated.changes };
  });
}

/** Records the packages a step installed (vmfile/lock-steps.ts); returns those new or changed, or undefined when the lock does not name the machine. */
export async function recordStepPackages(projectDir: string, machine: string, step: string, install: StepInstall): Promise<string[] | undefined> {
  return changeLock(projectDir, 'record the packages a step installed', (lock) => {
    const updated = withStepPackages(lock, machine, step, install);
    return updated === undefined ? undefined : { lock: updated.lock, result: updated.changed };
  });
}

async function changeLock<T>(projectDir: string, purpose: string, change: (lock: LockFile) => { lock: LockFile; result: T } | undefined): Promise<T | undefined> {
  return withLock(join(projectStateDir(projectDir), 'lockfile.lock'), 'Vmfile.lock', purpose, async () => {
    const updated = change(await readLockFile(projectDir));
    if (updated !== undefined) await writeLockFile(projectDir, updated.lock);
    return updated?.result;
  }, { waitMs: 30_000 });
}

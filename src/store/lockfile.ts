/** Vmfile.lock on disk: read it (missing means empty), write it whole. See vmfile/lock.ts for what it holds. */
import { readFile } from 'node:fs/promises';
import { ConfigError } from '../errors.js';
import { formatLockFile, parseLockFile, type LockFile } from '../vmfile/lock.js';
import { writeFileAtomic } from './json.js';
import { lockFilePath } from './layout.js';

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


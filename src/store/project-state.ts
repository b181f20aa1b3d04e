/**
 * A project's .vmfile/ directory, made when missing and refused when it is not one: a
 * repository can commit a `.vmfile` symbolic link, and vmfile must not write machines,
 * keys or anything else through it.
 */
import { lstat, mkdir } from 'node:fs/promises';
import { ConfigError } from '../errors.js';
import { projectStateDir } from './layout.js';

/** Makes the project's .vmfile/ (0700) if it is missing; its path. */
export async function ensureProjectStateDir(projectDir: string): Promise<string> {
  const stateDir = projectStateDir(projectDir);
  // A name that is there already, of any kind, is examined below.
  await mkdir(stateDir, { recursive: true, mode: 0o700 }).catch((error: unknown) => {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  });
  const info = await lstat(stateDir);
  if (info.isSymbolicLink() || !info.isDirectory()) {
    throw new ConfigError(`${stateDir} is ${info.isSymbolicLink() ? 'a symbolic link' : 'not a directory'}; vmfile keeps this project's machines and keys there and makes it itself`, {
      hint: `remove it (it is not part of the project: .vmfile/ belongs in .gitignore), then run the command again`,
    });
  }
  return stateDir;
}

/**
 * The one way vmfile writes its files: whole, to a temporary name beside the target,
 * then renamed into place, so a crash or a full disk never leaves half a file. Private
 * by default (0600): machine records and caches hold paths and ports.
 */
import { rename, rm, writeFile } from 'node:fs/promises';
import { readRegularFile } from './regular-file.js';

export async function writeFileAtomic(path: string, text: string, options: { mode?: number; skipUnchanged?: boolean } = {}): Promise<void> {
  if (options.skipUnchanged === true && (await readRegularFile(path).catch(() => undefined)) === text) return;
  const temporary = `${path}.tmp-${process.pid}`;
  try {
    await writeFile(temporary, text, { mode: options.mode ?? 0o600 });
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}

/** Two-space JSON with a final newline. */
export async function writeJsonAtomic(path: string, value: unknown, options: { mode?: number } = {}): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`, options);
}

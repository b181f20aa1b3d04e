/**
 * Hostile boxes for the import tests, made with the real qemu-img and tar in a temporary
 * directory, and a way to see whether a host file's bytes reached the box store.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { lstat, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** A host file vmfile must never copy: a marker line, padded to 1 MiB so it can serve as a raw backing disk. */
export async function hostSecret(dir: string): Promise<{ path: string; marker: string }> {
  const marker = `VMFILE-HOST-SECRET-${randomBytes(8).toString('hex')}`;
  const path = join(dir, 'host-secret');
  const content = Buffer.alloc(1024 * 1024);
  content.write(`${marker}\n`);
  await writeFile(path, content);
  return { path, marker };
}

export function qemuImg(...args: string[]): void {
  execFileSync('qemu-img', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A 1 MiB qcow2 image with nothing wrong with it. */
export function cleanQcow2(path: string): void {
  qemuImg('create', '-q', '-f', 'qcow2', path, '1M');
}

/** A qcow2 image whose unallocated clusters read from `backing` (a host file, or a protocol such as fat:). */
export function qcow2WithBacking(path: string, backing: string, format: 'raw' | 'qcow2' | 'vvfat'): void {
  qemuImg('create', '-q', '-f', 'qcow2', '-u', '-b', backing, '-F', format, path, '1M');
}

/** A qcow2 image whose guest data live in `dataFile` (created by qemu-img, then overwritten with `content`). */
export async function qcow2WithDataFile(path: string, dataFile: string, content: Buffer): Promise<void> {
  qemuImg('create', '-q', '-f', 'qcow2', '-o', `data_file=${dataFile},data_file_raw=on`, path, '1M');
  await writeFile(dataFile, content);
}

/** `tar` in `dir` with the given arguments (members, options). */
export function tar(dir: string, ...args: string[]): void {
  execFileSync('tar', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Every regular file under `dir` whose bytes contain `marker`. */
export async function filesContaining(dir: string, marker: string): Promise<string[]> {
  const found: string[] = [];
  const needle = Buffer.from(marker);
  const walk = async (path: string): Promise<void> => {
    const info = await lstat(path).catch(() => undefined);
    if (info === undefined) return;
    if (info.isDirectory()) {
      for (const entry of await readdir(path)) await walk(join(path, entry));
    } else if (info.isFile() && (await readFile(path)).includes(needle)) {
      found.push(path);
    }
  };
  await walk(dir);
  return found;
}

/** Everything under `dir`, relative, directories with a trailing slash. */
export async function treeOf(dir: string): Promise<string[]> {
  const entries: string[] = [];
  const walk = async (path: string, prefix: string): Promise<void> => {
    for (const entry of (await readdir(path, { withFileTypes: true }).catch(() => [])).sort((a, b) => a.name.localeCompare(b.name))) {
      entries.push(`${prefix}${entry.name}${entry.isDirectory() ? '/' : ''}`);
      if (entry.isDirectory()) await walk(join(path, entry.name), `${prefix}${entry.name}/`);
    }
  };
  await walk(dir, '');
  return entries;
}

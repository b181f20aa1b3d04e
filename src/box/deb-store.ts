/**
 * The package store: every .deb a box was built from or a provisioning step installed, kept under VMFILE_HOME/debs/ by
 * its sha256 and shared by every box and project on the host, so that a locked box can
 * be rebuilt from exactly its packages after the mirror has moved on, or offline.
 *
 *   debs/<sha256>.deb    the file; its name is its digest
 *   debs/<sha256>.json   what it is (DebRef) and where it came from (build, import, mirror, snapshot,
 *                        or a provisioning step's guest: provision/step-packages.ts)
 *
 * A file is checked against its name whenever it is used: the store is a directory
 * anyone with the user's rights can write to, and a changed byte must be refused and
 * named, never built into a box. Files arrive through a temporary name and a rename,
 * so a killed vmfile leaves no half file under a digest's name.
 */
import { randomBytes } from 'node:crypto';
import { copyFile, link, mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { sha256File } from '../store/digest.js';
import { pathExists } from '../store/exists.js';
import { writeJsonAtomic } from '../store/json.js';
import { debLabel, debRefSchema, type DebRef } from '../vmfile/deb-ref.js';

export const DEB_ORIGINS = ['build', 'import', 'mirror', 'snapshot', 'step'] as const;
export type DebOrigin = (typeof DEB_ORIGINS)[number];

const recordSchema = z.strictObject({ deb: debRefSchema, origin: z.enum(DEB_ORIGINS) });

/** No Debian package file comes near this; a source (a server, a bundle) offering more is not offering one. */
export const MAX_DEB_BYTES = 1024 ** 3;

/** A hard link of `from` at `to` where both are on one file system, else a copy. */
export async function linkOrCopy(from: string, to: string): Promise<void> {
  await link(from, to).catch(() => copyFile(from, to));
}

export function debsDir(home: string): string {
  return join(home, 'debs');
}

function debPath(home: string, sha256: string): string {
  return join(debsDir(home), `${sha256}.deb`);
}

/**
 * Adds `file` to the store as `deb`, after checking its sha256 (a hard link when it is
 * on the same file system, else a copy). Returns the stored path, or the problem when
 * the file is not what `deb` says.
 */
export async function storeDeb(home: string, file: string, deb: DebRef, origin: DebOrigin): Promise<{ path: string } | { problem: string }> {
  const actual = await sha256File(file);
  if (actual !== deb.sha256) return { problem: `${debLabel(deb)}: the file hashes to ${actual}, not ${deb.sha256}` };
  const dir = debsDir(home);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const path = debPath(home, deb.sha256);
  // A file already stored keeps the record of where it first came from.
  if ((await pathExists(path)) && (await readRecord(home, deb.sha256)) !== undefined) return { path };
  if (!(await pathExists(path))) {
    const temporary = join(dir, `.${deb.sha256}.${randomBytes(4).toString('hex')}.tmp`);
    try {
      await linkOrCopy(file, temporary);
      await rename(temporary, path);
    } finally {
      await rm(temporary, { force: true });
    }
  }
  await writeJsonAtomic(join(dir, `${deb.sha256}.json`), { deb, origin }, { mode: 0o600 });
  return { path };
}

/**
 * The stored file for `deb`, checked against its digest: `missing` when the store has
 * none, `tampered` (and the file is removed, so the next source can supply it) when its
 * bytes are not what its name says.
 */
export async function storedDeb(home: string, deb: DebRef): Promise<{ path: string; origin: DebOrigin } | { missing: true } | { tampered: string }> {
  const path = debPath(home, deb.sha256);
  if (!(await pathExists(path))) return { missing: true };
  const actual = await sha256File(path);
  if (actual !== deb.sha256) {
    await rm(path, { force: true });
    return { tampered: `${debLabel(deb)}: the stored file ${path} hashes to ${actual}, not ${deb.sha256}; it was removed from the store` };
  }
  return { path, origin: (await readRecord(home, deb.sha256))?.origin ?? 'build' };
}

/** Whether the store holds a file under `deb`'s digest (not re-hashed: for showing, not for building). */
export async function hasStoredDeb(home: string, sha256: string): Promise<DebOrigin | undefined> {
  if (!(await pathExists(debPath(home, sha256)))) return undefined;
  return (await readRecord(home, sha256))?.origin ?? 'build';
}

async function readRecord(home: string, sha256: string): Promise<z.infer<typeof recordSchema> | undefined> {
  try {
    const parsed = recordSchema.safeParse(JSON.parse(await readFile(join(debsDir(home), `${sha256}.json`), 'utf8')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** Digests of every stored file, for pruning. */
export async function storedDigests(home: string): Promise<string[]> {
  const names = await readdir(debsDir(home)).catch(() => [] as string[]);
  return names.filter((name) => /^[0-9a-f]{64}\.deb$/.test(name)).map((name) => name.slice(0, 64));
}

/** Removes the stored files whose digest is not in `keep`; returns how many and their bytes. */
export async function pruneDebs(home: string, keep: ReadonlySet<string>, options: { dryRun: boolean }): Promise<{ files: number; bytes: number }> {
  let files = 0;
  let bytes = 0;
  for (const sha256 of await storedDigests(home)) {
    if (keep.has(sha256)) continue;
    const path = debPath(home, sha256);
    bytes += (await stat(path).catch(() => ({ size: 0 }))).size;
    files += 1;
    if (options.dryRun) continue;
    await rm(path, { force: true });
    await rm(join(debsDir(home), `${sha256}.json`), { force: true });
  }
  return { files, bytes };
}

/** sha256 of files, and a cache of it beside a large file (box disks). */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { writeJsonAtomic } from './json.js';

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * 1024 * 1024 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * The file's sha256, re-computed only when the file may have changed: the digest is
 * cached beside it with the facts it was computed for (size, mtime, ctime, inode). Any
 * write to the file changes its ctime, which no user tool can set back, so a modified
 * disk is always re-hashed; an untouched multi-GB disk is not read on every vmup.
 * This guards against accidents and silent corruption, not against someone who can
 * also rewrite the cache (they could as well rewrite box.json).
 */
export async function cachedSha256(file: string, cachePath: string): Promise<{ sha256: string; cached: boolean }> {
  const facts = await fileFacts(file);
  try {
    const cached: unknown = JSON.parse(await readFile(cachePath, 'utf8'));
    if (isCacheRecord(cached) && sameFacts(cached, facts)) return { sha256: cached.sha256, cached: true };
  } catch {
    // No cache yet, or an unreadable one: compute.
  }
  const sha256 = await sha256File(file);
  // The file must not have changed while it was read, or the digest belongs to neither version.
  if (sameFacts(facts, await fileFacts(file))) {
    // A cache that cannot be written (read-only store) only costs a re-hash next time.
    await writeJsonAtomic(cachePath, { ...facts, sha256 }, { mode: 0o644 }).catch(() => undefined);
  }
  return { sha256, cached: false };
}

interface FileFacts {
  size: number;
  mtimeNs: string;
  ctimeNs: string;
  ino: string;
}

async function fileFacts(file: string): Promise<FileFacts> {
  const info = await stat(file, { bigint: true });
  return { size: Number(info.size), mtimeNs: String(info.mtimeNs), ctimeNs: String(info.ctimeNs), ino: String(info.ino) };
}

function sameFacts(a: FileFacts, b: FileFacts): boolean {
  return a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs && a.ino === b.ino;
}

function isCacheRecord(value: unknown): value is FileFacts & { sha256: string } {
  if (typeof value !== 'object' || value === null) return false;
  const record = value as Record<string, unknown>;
  return (
    typeof record['size'] === 'number' &&
    typeof record['mtimeNs'] === 'string' &&
    typeof record['ctimeNs'] === 'string' &&
    typeof record['ino'] === 'string' &&
    typeof record['sha256'] === 'string' &&
    /^[0-9a-f]{64}$/.test(record['sha256'])
  );
}

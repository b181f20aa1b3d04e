/**
 * Vmfile.lock: which exact box each machine of a Vmfile was made from, committed next
 * to the Vmfile so that the same environment comes up here, on a colleague's host and
 * months later — or vmup says precisely what differs.
 *
 * Per machine it records the box name, version and the sha256 of its disk (and, for a
 * box built from a recipe, the recipe's hash, the SOURCE_DATE_EPOCH and the build date).
 * The first vmup writes the entry; every later vmup verifies it before anything is
 * created or booted, and a mismatch is a ConfigError naming the machine, each
 * difference, and `vmfile lock --update`.
 *
 * What "verify" reads: the box's box.json digest is compared with the lock (cheap), and
 * the disk file itself is hashed and compared with both — but through a digest cache
 * beside the disk (box/digest.ts: size, mtime, ctime, inode -> sha256), so a multi-GB
 * disk is read once after it changes, not on every vmup. A disk edited in place changes
 * its ctime and is re-hashed, so a tampered disk is refused.
 *
 * The file is JSON with a fixed key order and machines sorted by name, ending in a
 * newline, so that it diffs well in version control and rewriting it unchanged is a no-op.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { z } from 'zod';
import { cachedSha256 } from '../box/digest.js';
import type { BoxMetadata } from '../box/metadata.js';
import type { InstalledBox } from '../box/store.js';
import { ConfigError } from '../errors.js';
import { lockFilePath, LOCK_FILE_NAME } from '../state/layout.js';
import type { BoxRef, MachineConfig, Project } from './config.js';
import { formatIssues } from './config.js';

const SHA256 = /^[0-9a-f]{64}$/;

const recipeSchema = z.strictObject({
  name: z.string(),
  hash: z.string().regex(SHA256),
  suite: z.string(),
  /** Absent for boxes built before vmfile recorded them. */
  sourceDateEpoch: z.number().int().optional(),
  snapshot: z.string().optional(),
  built: z.string().optional(),
});

const entrySchema = z.strictObject({
  box: z.string(),
  version: z.string(),
  sha256: z.string().regex(SHA256, { error: 'expected 64 lower-case hex digits' }),
  /** Where the box came from: built from a recipe, imported, or packaged from a machine. */
  source: z.enum(['recipe', 'import', 'package']),
  recipe: recipeSchema.optional(),
});

export const lockFileSchema = z.strictObject({
  lockVersion: z.literal(1, { error: 'this Vmfile.lock was written by a newer vmfile (lockVersion is not 1)' }),
  machines: z.record(z.string(), entrySchema),
});

export type LockEntry = z.infer<typeof entrySchema>;
export type LockFile = z.infer<typeof lockFileSchema>;

/** What a box is, as far as the lock is concerned: box.json plus the digest of the disk as it is now. */
export interface BoxFacts {
  metadata: BoxMetadata;
  /** sha256 of the disk file on disk now (may differ from metadata.disk.sha256 if it was modified). */
  diskSha256: string;
}

/** The lock entry describing `metadata`, keys in their fixed order. */
export function entryFor(metadata: BoxMetadata): LockEntry {
  const entry: LockEntry = { box: metadata.name, version: metadata.version, sha256: metadata.disk.sha256, source: metadata.source.kind };
  if (metadata.source.kind === 'recipe') {
    const source = metadata.source;
    entry.recipe = {
      name: source.recipe,
      hash: source.recipeHash,
      suite: source.suite,
      ...(source.sourceDateEpoch === undefined ? {} : { sourceDateEpoch: source.sourceDateEpoch }),
      ...(source.snapshot === undefined ? {} : { snapshot: source.snapshot }),
      ...(source.built === undefined ? {} : { built: source.built }),
    };
  }
  return entry;
}

/**
 * Every way `box` differs from the lock `entry`, one sentence each; empty when they
 * agree. The lock pins the disk's content, so its digest is compared with the disk file
 * as it is now; box.json's digest only explains the difference (rebuilt box, or a disk
 * modified in place). Build dates and the like are recorded for people, not compared: a
 * reproducible rebuild with the same digest is the same box.
 */
export function compareEntry(entry: LockEntry, box: BoxFacts): string[] {
  const { metadata, diskSha256 } = box;
  const recorded = metadata.disk.sha256;
  const differences: string[] = [];
  if (entry.box !== metadata.name) differences.push(`box: ${LOCK_FILE_NAME} has "${entry.box}", the Vmfile now uses "${metadata.name}"`);
  if (entry.version !== metadata.version) differences.push(`version: ${LOCK_FILE_NAME} has ${entry.version}, the installed box is ${metadata.version}`);
  if (entry.sha256 !== diskSha256) {
    if (recorded === entry.sha256) {
      differences.push(`disk sha256: ${LOCK_FILE_NAME} and box.json have ${entry.sha256}, but the disk file now hashes to ${diskSha256} (it was modified after the box was installed)`);
    } else if (recorded === diskSha256) {
      differences.push(`disk sha256: ${LOCK_FILE_NAME} has ${entry.sha256}, the installed box has ${diskSha256} (a different build of the box)`);
    } else {
      differences.push(`disk sha256: ${LOCK_FILE_NAME} has ${entry.sha256}, box.json has ${recorded}, and the disk file hashes to ${diskSha256}`);
    }
  }
  const lockedRecipe = entry.recipe?.hash;
  const boxRecipe = metadata.source.kind === 'recipe' ? metadata.source.recipeHash : undefined;
  if (lockedRecipe !== boxRecipe) {
    differences.push(`recipe hash: ${LOCK_FILE_NAME} has ${lockedRecipe ?? '(not built from a recipe)'}, the box was built from ${boxRecipe ?? '(not built from a recipe)'}`);
  }
  return differences;
}

/**
 * The box a machine should use: the Vmfile's reference, except that when the Vmfile
 * names no version and the lock has an entry for the same box name, the locked version
 * is the one to use (that is what the lock is for). A Vmfile that pins a version, or
 * names another box, wins; verification then says how it differs from the lock.
 */
export function lockedBoxRef(ref: BoxRef, entry: LockEntry | undefined): BoxRef & { fromLock: boolean } {
  if (ref.version !== undefined || entry === undefined || entry.box !== ref.name) return { ...ref, fromLock: false };
  return { name: ref.name, version: entry.version, fromLock: true };
}

export function parseLockFile(text: string, path: string): LockFile {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`${path} is not valid JSON: ${error instanceof Error ? error.message : String(error)}`, {
      hint: 'restore it from version control, or delete it and run vmfile lock --update',
    });
  }
  const parsed = lockFileSchema.safeParse(value);
  if (!parsed.success) {
    throw new ConfigError(`${path} is invalid:\n${formatIssues(parsed.error.issues).map((line) => `  - ${line}`).join('\n')}`, {
      hint: 'restore it from version control, or delete it and run vmfile lock --update',
    });
  }
  return parsed.data;
}

/** The file's text: fixed key order, machines sorted, two-space indent, final newline. */
export function formatLockFile(lock: LockFile): string {
  const machines: Record<string, LockEntry> = {};
  for (const name of Object.keys(lock.machines).sort()) {
    const entry = lock.machines[name];
    if (entry !== undefined) machines[name] = orderedEntry(entry);
  }
  return `${JSON.stringify({ lockVersion: 1, machines }, null, 2)}\n`;
}

function orderedEntry(entry: LockEntry): LockEntry {
  const ordered: LockEntry = { box: entry.box, version: entry.version, sha256: entry.sha256, source: entry.source };
  if (entry.recipe !== undefined) {
    const recipe = entry.recipe;
    ordered.recipe = {
      name: recipe.name,
      hash: recipe.hash,
      suite: recipe.suite,
      ...(recipe.sourceDateEpoch === undefined ? {} : { sourceDateEpoch: recipe.sourceDateEpoch }),
      ...(recipe.snapshot === undefined ? {} : { snapshot: recipe.snapshot }),
      ...(recipe.built === undefined ? {} : { built: recipe.built }),
    };
  }
  return ordered;
}

/** The project's lock, or an empty one when there is no Vmfile.lock yet. */
export async function readLockFile(projectDir: string): Promise<LockFile> {
  const path = lockFilePath(projectDir);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { lockVersion: 1, machines: {} };
    throw error;
  }
  return parseLockFile(text, path);
}

/** Written whole and renamed into place: a crash never leaves half a lock. Unchanged content is not rewritten. */
export async function writeLockFile(projectDir: string, lock: LockFile): Promise<void> {
  const path = lockFilePath(projectDir);
  const text = formatLockFile(lock);
  const current = await readFile(path, 'utf8').catch(() => undefined);
  if (current === text) return;
  const temporary = `${path}.tmp-${process.pid}`;
  await writeFile(temporary, text, { mode: 0o644 });
  await rename(temporary, path);
}

/** The box's facts, hashing the disk only when it changed since it was last hashed. */
export async function boxFacts(box: InstalledBox): Promise<BoxFacts> {
  const { sha256 } = await cachedSha256(box.paths.disk, box.paths.diskDigestCache);
  return { metadata: box.metadata, diskSha256: sha256 };
}

export type LockOutcome = 'written' | 'verified' | 'updated';

/**
 * Called by vmup before a machine is created or booted. No entry yet (first use):
 * checks the disk against its box.json, then writes the entry. An entry: verifies it,
 * and throws a ConfigError listing every difference (nothing is created or booted).
 * `update: true` (vmfile lock --update) records the box as it is now, even a disk that
 * no longer matches its box.json: the user asked for exactly that.
 */
export async function checkLock(project: Project, machine: MachineConfig, box: InstalledBox, options: { update: boolean }): Promise<LockOutcome> {
  const lock = await readLockFile(project.dir);
  const facts = await boxFacts(box);
  const existing = lock.machines[machine.name];
  if (options.update) {
    const entry = { ...entryFor(box.metadata), sha256: facts.diskSha256 };
    await writeLockFile(project.dir, { ...lock, machines: { ...lock.machines, [machine.name]: entry } });
    return 'updated';
  }
  if (existing === undefined) {
    // First use: never lock in a disk that already differs from what its box says it is.
    const fresh = entryFor(box.metadata);
    if (facts.diskSha256 !== fresh.sha256) {
      const sentence = `disk sha256: box.json records ${fresh.sha256}, but the disk file hashes to ${facts.diskSha256} (it was modified after the box was installed)`;
      throw mismatchError(project, machine, box, [sentence], 'cannot write');
    }
    await writeLockFile(project.dir, { ...lock, machines: { ...lock.machines, [machine.name]: fresh } });
    return 'written';
  }
  const differences = compareEntry(existing, facts);
  if (differences.length === 0) return 'verified';
  throw mismatchError(project, machine, box, differences, 'does not match');
}

function mismatchError(project: Project, machine: MachineConfig, box: InstalledBox, differences: readonly string[], verb: 'does not match' | 'cannot write'): ConfigError {
  const lockPath = lockFilePath(project.dir);
  const what = `box ${box.metadata.name} ${box.metadata.version}`;
  const head =
    verb === 'cannot write'
      ? `machine "${machine.name}": ${what} is not what its box.json says, so ${LOCK_FILE_NAME} was not written`
      : `machine "${machine.name}": ${what} does not match ${lockPath}`;
  return new ConfigError(`${head}:\n${differences.map((line) => `  - ${line}`).join('\n')}\nNothing was created or booted.`, {
    hint:
      verb === 'cannot write'
        ? `reinstall the box (vmfile box remove ${box.metadata.name} --version ${box.metadata.version}, then vmup), or accept it as it is with: vmfile lock --update`
        : `if this box is what you want now, record it with: vmfile lock --update (and commit ${LOCK_FILE_NAME}); otherwise install the locked box`,
  });
}

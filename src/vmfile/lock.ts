/**
 * Vmfile.lock: which exact box each machine of a Vmfile was made from, committed next
 * to the Vmfile so that the same environment comes up here, on a colleague's host and
 * months later — or vmup says precisely what differs.
 *
 * Per machine it records the box name, version and the sha256 of its disk (and of its
 * kernel and initrd, for a box that boots a kernel directly; for a box built from a
 * recipe, the recipe's hash, the SOURCE_DATE_EPOCH and the build date; for a downloaded
 * box, the URL, catalog and checksum it came with, for people: a vmup elsewhere fetches
 * the locked version only from the Vmfile's url, never from one the lock names).
 * The first vmup writes the entry; every later vmup verifies it before anything is
 * created or booted, and a mismatch is a ConfigError naming the machine, each
 * difference, and `vmfile lock --update`.
 *
 * What "verify" reads: the box's box.json digest is compared with the lock (cheap), and
 * the disk file itself is hashed and compared with both — but through a digest cache
 * beside the disk (store/digest.ts: size, mtime, ctime, inode -> sha256), so a multi-GB
 * disk is read once after it changes, not on every vmup. A disk edited in place changes
 * its ctime and is re-hashed, so a tampered disk is refused. The kernel and initrd are
 * compared the same way. Locks written before vmfile recorded them have no kernel or
 * initrd digest, and for those nothing is compared (`vmfile lock --update` adds them);
 * a box installed before box.json recorded them is locked with the digests of its files
 * on first use.
 *
 *
 * This module is pure: what the lock says and how a box compares with it. The file's
 * shape and text are vmfile/lock-file.ts; reading and writing it is store/lockfile.ts;
 * hashing the disk is box/store.ts.
 */
import { ConfigError } from '../errors.js';
import { boxOrigin, type BoxMetadata } from './box-metadata.js';
import type { BoxRef } from './config.js';
import { orderedEntry, orderedRecipe, type LockEntry, type LockFile } from './lock-file.js';
import { LOCK_FILE_NAME } from './names.js';
import { satisfies } from './version.js';

/** The lock file's name, next to the Vmfile. */
export { LOCK_FILE_NAME } from './names.js';
export { formatLockFile, lockFileSchema, parseLockFile, type LockEntry, type LockFile } from './lock-file.js';

/** What a box is, as far as the lock is concerned: box.json plus the digest of the disk as it is now. */
export interface BoxFacts {
  metadata: BoxMetadata;
  /** sha256 of the disk file on disk now (may differ from metadata.disk.sha256 if it was modified). */
  diskSha256: string;
  /** sha256 of the kernel and initrd files now, for a box that boots a kernel. */
  kernelSha256?: string;
  initrdSha256?: string;
}

type BootFile = 'kernel' | 'initrd';
const BOOT_FILES: readonly BootFile[] = ['kernel', 'initrd'];

/** The digest box.json records for a boot file (absent in boxes made before vmfile recorded them). */
function recordedBootDigest(metadata: BoxMetadata, file: BootFile): string | undefined {
  const boot = metadata.boot;
  if (boot.type !== 'kernel') return undefined;
  return file === 'kernel' ? boot.kernelSha256 : boot.initrd === undefined ? undefined : boot.initrdSha256;
}

/**
 * The lock entry describing `metadata`, keys in their fixed order. Kernel and initrd
 * digests are box.json's, or, for a box that records none, those of `files` (the files
 * as they are now: first use of an older box).
 */
export function entryFor(metadata: BoxMetadata, files: Pick<BoxFacts, 'kernelSha256' | 'initrdSha256'> = {}): LockEntry {
  const entry: LockEntry = { box: metadata.name, version: metadata.version, sha256: metadata.disk.sha256, source: metadata.source.kind };
  const kernelSha256 = recordedBootDigest(metadata, 'kernel') ?? files.kernelSha256;
  const initrdSha256 = recordedBootDigest(metadata, 'initrd') ?? files.initrdSha256;
  if (kernelSha256 !== undefined) entry.kernelSha256 = kernelSha256;
  if (initrdSha256 !== undefined) entry.initrdSha256 = initrdSha256;
  if (metadata.source.kind === 'recipe') {
    const { recipe, recipeHash, suite, sourceDateEpoch, snapshot, built, debs } = metadata.source;
    entry.recipe = orderedRecipe({ name: recipe, hash: recipeHash, suite, sourceDateEpoch, snapshot, built, packages: debs });
  }
  return orderedEntry({ ...entry, ...boxOrigin(metadata) });
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
  for (const file of BOOT_FILES) {
    const difference = bootFileDifference(file, entry[`${file}Sha256`], recordedBootDigest(metadata, file), box[`${file}Sha256`]);
    if (difference !== undefined) differences.push(difference);
  }
  const lockedRecipe = entry.recipe?.hash;
  const boxRecipe = metadata.source.kind === 'recipe' ? metadata.source.recipeHash : undefined;
  if (lockedRecipe !== boxRecipe) {
    differences.push(`recipe hash: ${LOCK_FILE_NAME} has ${lockedRecipe ?? '(not built from a recipe)'}, the box was built from ${boxRecipe ?? '(not built from a recipe)'}`);
  }
  return differences;
}

/** How a kernel or initrd differs from the lock; undefined when it does not, or when the lock records no digest for it (an older lock). */
function bootFileDifference(file: BootFile, locked: string | undefined, recorded: string | undefined, now: string | undefined): string | undefined {
  if (locked === undefined || locked === now) return undefined;
  if (now === undefined) return `${file} sha256: ${LOCK_FILE_NAME} has ${locked}, the installed box has no ${file}`;
  if (recorded === locked) return `${file} sha256: ${LOCK_FILE_NAME} and box.json have ${locked}, but the ${file} file now hashes to ${now} (it was modified after the box was installed)`;
  if (recorded === now) return `${file} sha256: ${LOCK_FILE_NAME} has ${locked}, the installed box has ${now} (a different build of the box)`;
  return `${file} sha256: ${LOCK_FILE_NAME} has ${locked}, ${recorded === undefined ? 'box.json records none' : `box.json has ${recorded}`}, and the ${file} file hashes to ${now}`;
}

/**
 * The box a machine should use: the Vmfile's reference, except that when the Vmfile
 * names no version (or a range the locked version is in) and the lock has an entry for
 * the same box name, the locked version is the one to use (that is what the lock is for),
 * downloaded if need be from the Vmfile's url. The lock pins a version, never a source:
 * it is text anyone can edit in a pull request, so its url and catalog are never asked,
 * and a box without a url in the Vmfile is built from its recipe or must be installed.
 * A Vmfile that pins a version, or names another box, wins; verification then says how
 * it differs from the lock.
 */
export function lockedBoxRef(ref: BoxRef, entry: LockEntry | undefined): BoxRef & { fromLock: boolean } {
  if (ref.version !== undefined || entry === undefined || entry.box !== ref.name) return { ...ref, fromLock: false };
  if (ref.constraints !== undefined && !satisfies(entry.version, ref.constraints)) return { ...ref, fromLock: false };
  const locked: BoxRef & { fromLock: boolean } = { name: ref.name, version: entry.version, fromLock: true, ...(ref.snapshotMirror === undefined ? {} : { snapshotMirror: ref.snapshotMirror }) };
  if (ref.url === undefined) return locked;
  return { ...locked, url: ref.url, ...(ref.checksum === undefined ? {} : { checksum: ref.checksum }) };
}

export type LockOutcome = 'written' | 'verified' | 'updated';

/**
 * The lock after a machine's box was checked against it, before the machine is created
 * or booted. No entry yet (first use): the disk must match its box.json, then the entry
 * is added. An entry: verifies it,
 * and throws a ConfigError listing every difference.
 * `update: true` (vmfile lock --update) records the box as it is now, even a disk that
 * no longer matches its box.json: the user asked for exactly that.
 */
export function settleLock(lock: LockFile, where: { machine: string; lockPath: string }, facts: BoxFacts, options: { update: boolean }): { outcome: LockOutcome; lock: LockFile } {
  const existing = lock.machines[where.machine];
  if (options.update) {
    // A new box keeps what the steps' outputs were: they are the project's, not the box's.
    // The steps' packages were resolved against the box's own, so only the same disk keeps them.
    const steps = existing?.steps !== undefined && existing.sha256 === facts.diskSha256 ? { steps: existing.steps } : {};
    const entry = orderedEntry({ ...entryFor(facts.metadata, facts), sha256: facts.diskSha256, ...bootDigestsOf(facts), ...(existing?.outputs === undefined ? {} : { outputs: existing.outputs }), ...steps });
    return { outcome: 'updated', lock: { ...lock, machines: { ...lock.machines, [where.machine]: entry } } };
  }
  if (existing === undefined) {
    // First use: never lock in a disk (or kernel, or initrd) that already differs from what its box says it is.
    const fresh = entryFor(facts.metadata, facts);
    const sentences: string[] = [];
    if (facts.diskSha256 !== fresh.sha256) {
      sentences.push(`disk sha256: box.json records ${fresh.sha256}, but the disk file hashes to ${facts.diskSha256} (it was modified after the box was installed)`);
    }
    for (const file of BOOT_FILES) {
      const recorded = recordedBootDigest(facts.metadata, file);
      const now = facts[`${file}Sha256`];
      if (recorded !== undefined && recorded !== now) {
        sentences.push(`${file} sha256: box.json records ${recorded}, but the ${file} file ${now === undefined ? 'is missing' : `hashes to ${now}`} (it was modified after the box was installed)`);
      }
    }
    if (sentences.length > 0) throw mismatchError(where, facts.metadata, sentences, 'cannot write');
    return { outcome: 'written', lock: { ...lock, machines: { ...lock.machines, [where.machine]: fresh } } };
  }
  const differences = compareEntry(existing, facts);
  if (differences.length === 0) return { outcome: 'verified', lock };
  throw mismatchError(where, facts.metadata, differences, 'does not match');
}

function bootDigestsOf(facts: BoxFacts): Pick<LockEntry, 'kernelSha256' | 'initrdSha256'> {
  return {
    ...(facts.kernelSha256 === undefined ? {} : { kernelSha256: facts.kernelSha256 }),
    ...(facts.initrdSha256 === undefined ? {} : { initrdSha256: facts.initrdSha256 }),
  };
}

function mismatchError(where: { machine: string; lockPath: string }, box: BoxMetadata, differences: readonly string[], verb: 'does not match' | 'cannot write'): ConfigError {
  const { lockPath, machine } = where;
  const what = `box ${box.name} ${box.version}`;
  const head =
    verb === 'cannot write'
      ? `machine "${machine}": ${what} is not what its box.json says, so ${LOCK_FILE_NAME} was not written`
      : `machine "${machine}": ${what} does not match ${lockPath}`;
  return new ConfigError(`${head}:\n${differences.map((line) => `  - ${line}`).join('\n')}\nNothing was created or booted.`, {
    hint:
      verb === 'cannot write'
        ? `reinstall the box (vmfile box remove ${box.name} --version ${box.version}, then vmup), or accept it as it is with: vmfile lock --update`
        : `if this box is what you want now, record it with: vmfile lock --update (and commit ${LOCK_FILE_NAME}); otherwise install the locked box`,
  });
}

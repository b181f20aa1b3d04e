/**
 * The box store under ~/.vmfile/boxes. A box version is a directory holding box.json
 * and its disk; it appears only by an atomic rename of a finished, verified staging
 * directory, so an interrupted import or build never leaves half a box behind.
 */
import { mkdir, mkdtemp, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError, InternalError, UserError } from '../errors.js';
import { run } from '../exec.js';
import { cachedSha256 } from '../store/digest.js';
import { writeJsonAtomic } from '../store/json.js';
import { mountsUnder, processAlive, processesUnder, processStartTime } from '../store/process.js';
import { BOX_METADATA_FILE, boxDir, boxDirName, boxesDir, boxPaths, stagingDir, type BoxPaths } from '../store/layout.js';
import type { BoxRef } from '../vmfile/config.js';
import { boxMetadataSchema, printable, type BoxMetadata } from '../vmfile/box-metadata.js';
import type { BoxFacts } from '../vmfile/lock.js';
import { formatIssues } from '../vmfile/config.js';
import { compareVersions, satisfies } from '../vmfile/version.js';

export interface InstalledBox {
  metadata: BoxMetadata;
  paths: BoxPaths;
}

export async function readBoxMetadata(path: string): Promise<BoxMetadata> {
  let value: unknown;
  try {
    value = JSON.parse(await readFile(path, 'utf8'));
  } catch (error) {
    throw new ConfigError(`box metadata ${path} cannot be read: ${(error as Error).message}`, { hint: 'remove the box with "vmfile box remove" and add or build it again' });
  }
  const parsed = boxMetadataSchema.safeParse(value);
  if (!parsed.success) {
    throw new ConfigError(`box metadata ${path} is invalid: ${formatIssues(parsed.error.issues).map((line) => printable(line, 300)).join('; ')}`, {
      hint: 'remove the box with "vmfile box remove" and add or build it again',
    });
  }
  return parsed.data;
}

export async function listBoxes(home: string): Promise<InstalledBox[]> {
  const boxes: InstalledBox[] = [];
  for (const entry of await listDir(boxesDir(home))) {
    for (const version of await listDir(join(boxesDir(home), entry))) {
      try {
        const metadata = await readBoxMetadata(join(boxesDir(home), entry, version, BOX_METADATA_FILE));
        const paths = boxPaths(home, metadata.name, metadata.version);
        // Only the directory named after its own name and version is that box (see removeBox).
        if (paths.dir === join(boxesDir(home), entry, version)) boxes.push({ metadata, paths });
      } catch {
        // A directory without valid metadata is not a box (never produced by a rename).
      }
    }
  }
  return boxes.sort((a, b) => a.metadata.name.localeCompare(b.metadata.name) || compareVersions(a.metadata.version, b.metadata.version));
}

/** The requested version, or the newest one (that meets the constraints, when there are any) when the Vmfile pins none. */
export async function findBox(home: string, ref: Pick<BoxRef, 'name' | 'version' | 'constraints'>): Promise<InstalledBox | undefined> {
  const candidates = (await listBoxes(home)).filter((box) => box.metadata.name === ref.name);
  if (ref.version !== undefined) return candidates.find((box) => box.metadata.version === ref.version);
  const constraints = ref.constraints ?? [];
  return candidates.filter((box) => satisfies(box.metadata.version, constraints)).at(-1);
}

/**
 * The box's facts for Vmfile.lock: the digests of its disk, kernel and initrd as they are
 * now, each hashed only when the file changed since it was last hashed. A box installed
 * before box.json recorded kernel and initrd digests is hashed here all the same, so the
 * lock pins its files from first use (see vmfile/lock.ts).
 */
export async function boxFacts(box: InstalledBox): Promise<BoxFacts> {
  const { metadata, paths } = box;
  const diskSha256 = await digestOf(box, paths.disk, paths.diskDigestCache, 'disk');
  if (metadata.boot.type !== 'kernel') return { metadata, diskSha256 };
  const kernelSha256 = await digestOf(box, paths.kernel, paths.kernelDigestCache, 'kernel');
  if (metadata.boot.initrd === undefined) return { metadata, diskSha256, kernelSha256 };
  return { metadata, diskSha256, kernelSha256, initrdSha256: await digestOf(box, paths.initrd, paths.initrdDigestCache, 'initrd') };
}

async function digestOf(box: InstalledBox, file: string, cache: string, what: string): Promise<string> {
  try {
    return (await cachedSha256(file, cache)).sha256;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    throw new ConfigError(`box ${box.metadata.name} ${box.metadata.version} has no ${what} file ${file}`, {
      hint: `the box store was changed by hand: remove the box (vmfile box remove ${box.metadata.name} --version ${box.metadata.version}) and add or build it again`,
    });
  }
}

/**
 * A fresh staging directory inside the store (same file system, so install is a rename).
 * Its name carries the owner's pid and start time: staging left by a process that is
 * gone (killed, Ctrl-C) is removed here, by the next command that stages anything.
 * `purpose` ("add-org/name") may hold a box name, so it is spelt as the store spells names.
 */
export async function makeStaging(home: string, purpose: string): Promise<string> {
  const root = stagingDir(home);
  await mkdir(root, { recursive: true, mode: 0o700 });
  await sweepStaging(root);
  return mkdtemp(join(root, `${boxDirName(purpose)}@${process.pid}@${(await processStartTime(process.pid)) ?? '0'}-`));
}

/** Removes staging whose owner is gone. */
async function sweepStaging(root: string): Promise<void> {
  for (const entry of await listDir(root)) {
    const owner = /@(\d+)@(\d+)-[^@/]*$/.exec(entry);
    if (owner === null || (await processAlive(Number(owner[1]), owner[2] === '0' ? undefined : owner[2]))) continue;
    // Sweeping is housekeeping: whatever stops it is left for the next command, never this one's failure.
    await removeStaging(join(root, entry)).catch(() => undefined);
  }
}

/**
 * Removes a staging directory, unless a process still works in it (a killed build's
 * mmdebstrap may run on in its chroot for a while) or something stays mounted in it:
 * removing the tree then would reach into the host's /dev/shm or /sys. Left for a later
 * sweep in those cases, and when an interrupt ends vmfile before it is done.
 */
async function removeStaging(path: string): Promise<void> {
  if ((await processesUnder(path)).length > 0 || !(await unmountLeftovers(path))) return;
  await rm(path, { recursive: true, force: true, maxRetries: 2 });
}

/**
 * A build killed inside mmdebstrap leaves its chroot's /proc, /sys, /dev/pts and
 * /dev/shm mounted; removing the tree then would reach into the host's. They are
 * unmounted deepest first; false (the directory is left alone) when any stays.
 */
async function unmountLeftovers(dir: string): Promise<boolean> {
  const points = (await mountsUnder(dir)).sort((a, b) => b.length - a.length);
  for (const point of points) await run('umount', [point], { purpose: `unmount ${point}, left by a killed box build` }).catch(() => undefined);
  return (await mountsUnder(dir)).length === 0;
}

/** Moves a finished staging directory into place as box name@version. */
export async function installStaged(home: string, staged: string, metadata: BoxMetadata): Promise<InstalledBox> {
  // What is installed must read back: a box.json the store would refuse is vmfile's own bug.
  const valid = boxMetadataSchema.safeParse(metadata);
  if (!valid.success) throw new InternalError(`box ${metadata.name}: the box.json to install is invalid: ${formatIssues(valid.error.issues).join('; ')}`);
  const paths = boxPaths(home, metadata.name, metadata.version);
  await writeJsonAtomic(join(staged, BOX_METADATA_FILE), metadata, { mode: 0o644 });
  await mkdir(boxDir(home, metadata.name), { recursive: true, mode: 0o700 });
  try {
    await rename(staged, paths.dir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOTEMPTY' || code === 'EEXIST') {
      throw new UserError(`box ${metadata.name} version ${metadata.version} already exists`, {
        hint: `remove it first (vmfile box remove ${metadata.name} --version ${metadata.version}) or choose another --version`,
      });
    }
    throw error;
  }
  return { metadata, paths };
}

export async function removeBox(home: string, name: string, version?: string): Promise<BoxMetadata[]> {
  const matching = (await listBoxes(home)).filter((box) => box.metadata.name === name && (version === undefined || box.metadata.version === version));
  if (matching.length === 0) {
    throw new UserError(`box ${name}${version === undefined ? '' : ` version ${version}`} is not installed`, { hint: 'see installed boxes with: vmfile box list' });
  }
  for (const box of matching) {
    // Moved into staging first: a half-deleted directory never looks like a box, and
    // one left by a killed removal is swept like any other staging.
    const doomed = await makeStaging(home, `remove-${box.metadata.name}`);
    await rename(box.paths.dir, join(doomed, 'box'));
    await rm(doomed, { recursive: true, force: true });
  }
  if ((await listDir(boxDir(home, name))).length === 0) await rm(boxDir(home, name), { recursive: true, force: true });
  return matching.map((box) => box.metadata);
}

export async function cleanStaging(path: string): Promise<void> {
  await removeStaging(path);
}

async function listDir(path: string): Promise<string[]> {
  try {
    return (await readdir(path, { withFileTypes: true })).filter((e) => e.isDirectory() && !e.name.includes('.removing-')).map((e) => e.name);
  } catch {
    return [];
  }
}

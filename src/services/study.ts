/**
 * `vmfile bundle` and `vmfile reproduce`: a study in one file, and its replay.
 *
 * The bundle (study/format.ts) holds the project's files and every package its lock
 * pins. A replay unpacks it into a new directory, stores the packages (each checked
 * against the lock's digest), and brings the machines up there with no provisioning
 * layer: the locked box is rebuilt from its packages when this host lacks it, and every
 * step runs again over the pinned packages. The outputs the steps record are then held
 * against the bundle's lock. The replay starts from a lock without outputs, so an output
 * no step made again is reported missing, never taken from the study. Without `keep`
 * the machines are destroyed afterwards, whatever happened; their box stays.
 */
import { cp, mkdir, readdir, rename, rmdir, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { importDebBundle } from '../box/deb-bundle.js';
import { cleanStaging, makeStaging } from '../box/store.js';
import { UserError } from '../errors.js';
import type { ServiceContext } from '../instance/context.js';
import { destroyMachines } from '../lifecycle/destroy.js';
import { upMachines } from '../lifecycle/up.js';
import { loadProject } from '../project/load.js';
import { lockFilePath } from '../store/layout.js';
import { readLockFile, writeLockFile } from '../store/lockfile.js';
import { compareOutputs, withoutOutputs, type OutputCheck } from '../study/compare.js';
import { unpackStudy } from '../study/unpack.js';
import { projectFiles, writeStudy } from '../study/write.js';
import { inPhase } from '../ui/reporter.js';
import { counted } from '../ui/words.js';
import type { Project } from '../vmfile/config.js';
import { lockedPackages, unpinnedStepPackages } from '../vmfile/lock-steps.js';

export interface BundleResult {
  output: string;
  bytes: number;
  files: number;
  packages: number;
  /** Output digests the lock records, which a replay checks. */
  outputs: number;
  /** Folders outside the project, whose files are not in the bundle. */
  leftOut: string[];
  /** Links and other non-regular files in the project's folders, not in the bundle. */
  skipped: string[];
  /** Packages the steps installed that the lock could not pin: a replay takes them from the mirror. */
  unpinned: string[];
}

export async function bundleStudy(options: { project: Project; output: string }, context: ServiceContext): Promise<BundleResult> {
  const { project } = options;
  const lock = await readLockFile(project.dir);
  const notRun = project.machines.filter((machine) => lock.machines[machine.name] === undefined).map((machine) => machine.name);
  if (notRun.length > 0) {
    throw new UserError(`${lockFilePath(project.dir)} does not name ${notRun.map((name) => `"${name}"`).join(', ')}: a bundle replays what the lock records of each machine`, { hint: 'vmup first: it records the box, the steps\' packages and their outputs' });
  }
  const entries = project.machines.map((machine) => lock.machines[machine.name]);
  const debs = entries.flatMap((entry) => lockedPackages(entry));
  const outputs = entries.reduce((sum, entry) => sum + Object.values(entry?.outputs ?? {}).reduce((count, files) => count + Object.keys(files).length, 0), 0);
  const unpinned = entries.flatMap((entry) => unpinnedStepPackages(entry));
  const output = resolve(options.output);
  const staging = await makeStaging(context.home, 'bundle');
  try {
    const files = await inPhase(context.reporter, 'bundle', 'Listing the project files', () => projectFiles(project, [output], staging));
    await inPhase(context.reporter, 'bundle', `Writing ${output}`, () => writeStudy({ home: context.home, project, files, debs, output, staging: join(staging, 'study') }).then(() => undefined));
    const packages = new Set(debs.map((deb) => deb.sha256)).size;
    if (outputs === 0) context.reporter.notice('no step has recorded outputs: vmfile reproduce will rebuild the machines, but has no results to check (a step declares them with outputs: ["results/*.csv"])');
    for (const folder of files.leftOut) context.reporter.notice(`${folder} is outside the project directory: its files are not in the bundle, and a replay needs them at that path`);
    if (unpinned.length > 0) context.reporter.notice(`the steps installed ${counted(unpinned.length, 'package')} the lock does not pin (${unpinned.slice(0, 3).join(', ')}${unpinned.length > 3 ? ', ...' : ''}): a replay takes them from the mirror`);
    return { output, bytes: (await stat(output)).size, files: files.files.length, packages, outputs, leftOut: files.leftOut, skipped: files.skipped, unpinned };
  } finally {
    await cleanStaging(staging);
  }
}

export interface ReproduceResult {
  directory: string;
  machines: string[];
  checks: OutputCheck[];
  /** True when every output the study recorded was made again, the same. */
  matched: boolean;
  /** Packages the steps installed this time that the lock does not pin. */
  unpinned: string[];
  kept: boolean;
}

export async function reproduceStudy(options: { file: string; into?: string; keep: boolean }, context: ServiceContext): Promise<ReproduceResult> {
  const file = resolve(options.file);
  const into = resolve(options.into ?? (basename(file).replace(/\.vmbundle$/, '') || 'study'));
  const existing = await readdir(into).catch((error: NodeJS.ErrnoException) => (error.code === 'ENOENT' ? undefined : Promise.reject(error)));
  if (existing !== undefined && existing.length > 0) {
    throw new UserError(`${into} already exists: a study is replayed in a new directory`, { hint: 'give another with --into DIR, or remove that one' });
  }
  const staging = await makeStaging(context.home, 'reproduce');
  let project: Project;
  try {
    const unpacked = await inPhase(context.reporter, 'reproduce', `Checking and unpacking ${file}`, () => unpackStudy(file, join(staging, 'bundle')));
    await mkdir(join(staging, 'import'), { mode: 0o700 });
    await inPhase(context.reporter, 'reproduce', `Storing ${counted(unpacked.manifest.packages, 'pinned package')}`, () => importDebBundle(context.home, unpacked.packages, join(staging, 'import')));
    if (existing !== undefined) await rmdir(into);
    await mkdir(dirname(into), { recursive: true });
    await moveTree(unpacked.project, into);
    project = await loadProject({ cwd: into, vmfile: join(into, unpacked.manifest.vmfile) });
  } finally {
    await cleanStaging(staging);
  }
  const locked = await readLockFile(into);
  await writeLockFile(into, withoutOutputs(locked));
  const machines = project.machines.map((machine) => machine.name);
  let failed = true;
  try {
    await upMachines({ project, machines, provision: 'boot', noCache: true }, context);
    failed = false;
  } finally {
    // A replay that stopped is destroyed too: what it left is in the directory, and --keep keeps the machines.
    if (!options.keep) await destroyMachines({ project, machines }, context).catch((error: unknown) => {
      if (!failed) throw error;
    });
  }
  const now = await readLockFile(into);
  const checks = compareOutputs(locked, now, machines);
  const unpinned = machines.flatMap((name) => unpinnedStepPackages(now.machines[name]));
  return { directory: into, machines, checks, matched: checks.every((check) => check.verdict === 'match'), unpinned, kept: options.keep };
}

/** Moves the unpacked project to `to` (which does not exist): renamed when it can be, copied across file systems. */
async function moveTree(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
    await cp(from, to, { recursive: true, errorOnExist: true, force: false, verbatimSymlinks: true });
  }
}

/**
 * `vmfile box prune`: which installed box versions can go. Kept: the newest version of
 * each box, and every version that a machine or a Vmfile.lock of a project on this host
 * still uses. Projects are known from the project index (store/projects.ts: every project
 * that ran vmup or `vmfile lock --update` here); a project this host never saw cannot be
 * asked, and a lock file committed but not yet used here protects nothing. Partial
 * downloads go too, unless a vmfile process is working on one. Package files
 * (box/deb-store.ts) stay while an installed box or a project's Vmfile.lock names them,
 * and all stay while any project cannot be read.
 */
import { readdir, stat } from 'node:fs/promises';
import { BusyError, VmfileError } from '../errors.js';
import { downloadPathsOf, downloadsDir, lockFilePath, machinePaths, PARTIAL_SUFFIX } from '../store/layout.js';
import { withLock } from '../store/lock.js';
import { readLockFile } from '../store/lockfile.js';
import { readMachineState } from '../store/machine.js';
import { pathExists } from '../store/exists.js';
import { listProjects, projectMachineNames } from '../store/projects.js';
import { compareVersions } from '../vmfile/version.js';
import { discardDownload } from './download.js';

export interface BoxUse {
  name: string;
  version: string;
  /** Who uses it, for people: 'machine "web" of /src/app', 'Vmfile.lock of /src/app (machine "web")'. */
  by: string;
}

export interface BoxVersionRef {
  name: string;
  version: string;
}

export interface PrunePlan {
  remove: BoxVersionRef[];
  keep: (BoxVersionRef & { reasons: string[] })[];
}

/**
 * What the projects on this host use: each machine's box (machine.json) and each
 * Vmfile.lock entry. A record that cannot be read is a warning, not a failure: prune then
 * knows less, and says so. Called with the uses lock held (store/projects.ts).
 */
export async function boxesInUse(home: string): Promise<{ uses: BoxUse[]; warnings: string[]; unsure: string[]; debs: Set<string> }> {
  const uses: BoxUse[] = [];
  const debs = new Set<string>();
  const warnings: string[] = [];
  const unsure: string[] = [];
  const { projects } = await listProjects(home, { locked: true });
  for (const { project, readable, machines: registered, locked } of projects) {
    // What a project registered counts whether or not it can be read now (store/projects.ts).
    for (const [machine, use] of Object.entries(registered ?? {})) {
      if (readable && !(await pathExists(machinePaths(project, machine).dir))) continue;
      uses.push({ ...use.box, by: `machine "${machine}" of ${project}${readable ? '' : ' (which cannot be read now)'}` });
    }
    if (!readable) {
      for (const box of locked ?? []) uses.push({ ...box, by: `${lockFilePath(project)} (which cannot be read now)` });
      if (registered === undefined) unsure.push(`${project} cannot be read, and it ran vmup before vmfile kept what its machines stand on; if it is gone for good, vmfile global-status --prune forgets it`);
      continue;
    }
    try {
      const lock = await readLockFile(project);
      for (const [machine, entry] of Object.entries(lock.machines)) {
        uses.push({ name: entry.box, version: entry.version, by: `${lockFilePath(project)} (machine "${machine}")` });
        for (const deb of entry.recipe?.packages ?? []) debs.add(deb.sha256);
        for (const step of Object.values(entry.steps ?? {})) for (const deb of step.packages) debs.add(deb.sha256);
      }
    } catch (error) {
      if (!(error instanceof VmfileError)) throw error;
      warnings.push(`${error.message}: the versions it pins are not known`);
    }
    for (const machine of await projectMachineNames(project)) {
      try {
        const state = await readMachineState(machinePaths(project, machine).state);
        if (state !== undefined) uses.push({ name: state.box.name, version: state.box.version, by: `machine "${machine}" of ${project}` });
      } catch (error) {
        if (!(error instanceof VmfileError)) throw error;
        warnings.push(`${error.message}: the box it uses is not known`);
      }
    }
  }
  return { uses, warnings, unsure, debs };
}

/** Pure: the newest version of each box and every used one stay; the rest go, unless what some project uses is not known (`unsure`): then all stay. */
export function planPrune(installed: readonly BoxVersionRef[], uses: readonly BoxUse[], unsure: readonly string[] = []): PrunePlan {
  const newest = new Map<string, string>();
  for (const { name, version } of installed) {
    const current = newest.get(name);
    if (current === undefined || compareVersions(version, current) > 0) newest.set(name, version);
  }
  const plan: PrunePlan = { remove: [], keep: [] };
  for (const box of installed) {
    const reasons = uses.filter((use) => use.name === box.name && use.version === box.version).map((use) => `used by ${use.by}`);
    if (newest.get(box.name) === box.version) reasons.unshift('newest');
    if (reasons.length === 0 && unsure.length > 0) reasons.push('a project that cannot be read may use it');
    if (reasons.length === 0) plan.remove.push({ name: box.name, version: box.version });
    else plan.keep.push({ name: box.name, version: box.version, reasons });
  }
  return plan;
}

/**
 * Partial downloads that no vmfile process is working on (`box prune`): how many and how
 * large, removed unless `dryRun`. One in progress holds its lock and is left alone.
 */
export async function idleDownloads(home: string, options: { dryRun: boolean }): Promise<{ files: number; bytes: number }> {
  const names = await readdir(downloadsDir(home)).catch(() => [] as string[]);
  let files = 0;
  let bytes = 0;
  for (const name of names.filter((file) => file.endsWith(PARTIAL_SUFFIX))) {
    const paths = downloadPathsOf(home, name.slice(0, -PARTIAL_SUFFIX.length));
    const size = (await stat(paths.partial).catch(() => undefined))?.size ?? 0;
    try {
      await withLock(paths.lock, `the partial download ${paths.partial}`, 'box prune', async () => {
        if (!options.dryRun) await discardDownload(paths);
      });
    } catch (error) {
      if (error instanceof BusyError) continue;
      throw error;
    }
    files++;
    bytes += size;
  }
  return { files, bytes };
}

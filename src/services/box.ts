/** The `vmfile box` commands: build, add, list, remove, outdated, update, prune. */
import { addBox as addBoxFromFile } from '../box/import.js';
import { pruneDebs } from '../box/deb-store.js';
import { boxesInUse, idleDownloads, planPrune, type BoxVersionRef, type PrunePlan } from '../box/prune.js';
import { addBoxFromUrl, installFromCatalog, newestInCatalog, type NetworkSettings } from '../box/remote.js';
import { listBoxes, removeBox as removeInstalledBox, type InstalledBox } from '../box/store.js';
import type { BoxMetadata } from '../vmfile/box-metadata.js';
import { listWarmStates, removeWarmStates, type WarmSummary } from '../lifecycle/warm.js';
import { UserError, VmfileError } from '../errors.js';
import type { Reporter } from '../ui/reporter.js';
import { boxOrigin } from '../vmfile/box-metadata.js';
import type { CatalogChoice } from '../vmfile/catalog.js';
import { compareVersions } from '../vmfile/version.js';
import { withUsesLock } from '../store/projects.js';
import type { LockedBuild } from '../box/build.js';
import type { ServiceContext } from '../instance/context.js';
import { lockedBuild, snapshotMirrorFromEnv } from '../lifecycle/box.js';
import { lockFilePath } from '../store/layout.js';
import { readLockFile } from '../store/lockfile.js';
import type { Project } from '../vmfile/config.js';

export { buildBox } from '../box/build.js';

/**
 * What `vmfile box build NAME --locked` rebuilds: the version of box NAME that the
 * project's Vmfile.lock pins, with the packages it names.
 */
export async function lockedBuildOf(project: Project, name: string, context: ServiceContext): Promise<{ version: string; build: LockedBuild }> {
  const entries = Object.values((await readLockFile(project.dir)).machines).filter((entry) => entry.box === name);
  const entry = entries.find((candidate) => candidate.recipe?.packages !== undefined);
  const build = entry === undefined ? undefined : lockedBuild(entry, snapshotMirrorFromEnv(context.env));
  if (entry === undefined || build === undefined) {
    throw new UserError(`${lockFilePath(project.dir)} ${entries.length === 0 ? `pins no box ${name}` : `names no packages for box ${name} (it was locked before vmfile recorded them)`}, so there is nothing to rebuild`, {
      hint: `build the box as it comes now with: vmfile box build ${name}, then record it with: vmfile lock --update`,
    });
  }
  return { version: entry.version, build };
}
export { listBoxes } from '../box/store.js';

/**
 * Removes a box (every version, or one), and the warm states made from it. A version a
 * machine was made from is refused unless `force`: the machine's disk is an overlay on it.
 */
export async function removeBox(home: string, name: string, version?: string, options: { force?: boolean } = {}): Promise<BoxMetadata[]> {
  return withUsesLock(home, 'remove a box', () => removeUnused(home, name, version, options));
}

async function removeUnused(home: string, name: string, version: string | undefined, options: { force?: boolean }): Promise<BoxMetadata[]> {
  if (options.force !== true) {
    const { uses } = await boxesInUse(home);
    const machines = uses.filter((use) => use.name === name && (version === undefined || use.version === version) && use.by.startsWith('machine '));
    if (machines.length > 0) {
      throw new UserError(`box ${name}${version === undefined ? '' : ` ${version}`} is in use: ${machines.map((use) => `${use.by} (version ${use.version})`).join(', ')}`, {
        hint: 'destroy those machines first (their disks are overlays on the box), or remove it anyway with --force',
      });
    }
  }
  const removed = await removeInstalledBox(home, name, version);
  for (const box of removed) await removeWarmStates(home, { name: box.name, version: box.version });
  return removed;
}

/** Installed boxes, each with the warm states made from it (lifecycle/warm.ts). */
export async function listBoxesWithWarmStates(home: string): Promise<{ box: InstalledBox; warm: WarmSummary[] }[]> {
  const [boxes, warm] = await Promise.all([listBoxes(home), listWarmStates(home)]);
  return boxes.map((box) => ({ box, warm: warm.filter((state) => state.box.name === box.metadata.name && state.box.version === box.metadata.version) }));
}

export interface AddBoxOptions {
  home: string;
  reporter: Reporter;
  name: string;
  /** A local file, or an http(s) URL of a box file or a Vagrant catalog. */
  source: string;
  checksum?: string;
  version?: string;
  network?: NetworkSettings;
}

/** `vmfile box add NAME FILE|URL`: a URL is downloaded (a catalog resolved first), a file imported. */
export async function addBox(options: AddBoxOptions): Promise<InstalledBox> {
  const { source, network, ...common } = options;
  if (/^https?:\/\//i.test(source)) return addBoxFromUrl({ ...common, url: source, ...(network === undefined ? {} : { network }) });
  return addBoxFromFile({ ...common, file: source });
}

export type OutdatedStatus = 'outdated' | 'up to date' | 'no catalog' | 'failed';

export interface OutdatedReport {
  name: string;
  /** The newest installed version. */
  installed: string;
  status: OutdatedStatus;
  /** The newest version the catalog offers this host. */
  latest?: string;
  catalog?: string;
  /** For 'failed': what went wrong. */
  error?: string;
}

/**
 * Each installed box (or those named) against its catalog: the one recorded by the newest
 * installed version that came from a catalog. A catalog that cannot be read fails that
 * box only.
 */
export async function boxOutdated(options: { home: string; names?: readonly string[]; network?: NetworkSettings }): Promise<OutdatedReport[]> {
  return (await compareWithCatalogs(options)).map(({ report }) => report);
}

async function compareWithCatalogs(options: { home: string; names?: readonly string[]; network?: NetworkSettings }): Promise<{ report: OutdatedReport; choice?: CatalogChoice }[]> {
  const results: { report: OutdatedReport; choice?: CatalogChoice }[] = [];
  for (const [name, versions] of await installedByName(options.home, options.names)) {
    const installed = versions.at(-1)?.metadata.version ?? '';
    const catalog = versions
      .map((box) => boxOrigin(box.metadata).catalog)
      .filter((url) => url !== undefined)
      .at(-1);
    if (catalog === undefined) {
      results.push({ report: { name, installed, status: 'no catalog' } });
      continue;
    }
    try {
      const choice = await newestInCatalog(name, catalog, options.network);
      const status = compareVersions(choice.version, installed) > 0 ? 'outdated' : 'up to date';
      results.push({ report: { name, installed, status, latest: choice.version, catalog }, choice });
    } catch (error) {
      if (!(error instanceof VmfileError)) throw error;
      results.push({ report: { name, installed, status: 'failed', catalog, error: error.message } });
    }
  }
  return results;
}

export interface UpdateReport extends OutdatedReport {
  /** Set when a newer version was installed. */
  updated?: string;
}

/**
 * Installs the newest catalog version of each outdated box (or those named). Machines and
 * Vmfile.lock are left alone: a lock keeps pinning its version until `vmfile lock
 * --update`, and machines keep the disk they were made from.
 */
export async function boxUpdate(options: { home: string; reporter: Reporter; names?: readonly string[]; network?: NetworkSettings }): Promise<UpdateReport[]> {
  const reports: UpdateReport[] = [];
  for (const { report, choice } of await compareWithCatalogs(options)) {
    if (report.status !== 'outdated' || report.catalog === undefined || choice === undefined) {
      reports.push(report);
      continue;
    }
    try {
      const network = options.network === undefined ? {} : { network: options.network };
      const box = await installFromCatalog({ home: options.home, reporter: options.reporter, name: report.name, catalog: report.catalog, ...network }, choice);
      reports.push({ ...report, updated: box.metadata.version });
    } catch (error) {
      if (!(error instanceof VmfileError)) throw error;
      reports.push({ ...report, status: 'failed', error: error.message });
    }
  }
  return reports;
}

export interface PruneResult extends PrunePlan {
  dryRun: boolean;
  /** Partial downloads no vmfile is working on: removed (or, with dryRun, to be removed). */
  partialDownloads: { files: number; bytes: number };
  /** Package files no installed box and no Vmfile.lock names: removed (or, with dryRun, to be removed). */
  packages: { files: number; bytes: number };
  /** Records that could not be read, so what they use is not known. */
  warnings: string[];
}

/** Removes the box versions nothing uses (see box/prune.ts), or with dryRun says which it would. */
export async function boxPrune(options: { home: string; dryRun: boolean; names?: readonly string[] }): Promise<PruneResult> {
  const installed: BoxVersionRef[] = [...(await installedByName(options.home, options.names)).values()].flat().map(({ metadata }) => ({ name: metadata.name, version: metadata.version }));
  const { plan, warnings, packages } = await withUsesLock(options.home, 'prune boxes', async () => {
    const { uses, warnings, unsure, debs } = await boxesInUse(options.home);
    const plan = planPrune(installed, uses, unsure);
    if (!options.dryRun) {
      for (const box of plan.remove) {
        const removed = await removeInstalledBox(options.home, box.name, box.version);
        for (const gone of removed) await removeWarmStates(options.home, { name: gone.name, version: gone.version });
      }
    }
    // Package files: those the boxes that stay, or any lock, name; none go while a project cannot be read.
    const removing = new Set(plan.remove.map((box) => `${box.name}@${box.version}`));
    for (const box of await listBoxes(options.home)) {
      if (box.metadata.source.kind !== 'recipe' || (options.dryRun && removing.has(`${box.metadata.name}@${box.metadata.version}`))) continue;
      for (const deb of box.metadata.source.debs ?? []) debs.add(deb.sha256);
    }
    const packages = unsure.length > 0 ? { files: 0, bytes: 0 } : await pruneDebs(options.home, debs, { dryRun: options.dryRun });
    return { plan, warnings: [...warnings, ...unsure], packages };
  });
  const partialDownloads = await idleDownloads(options.home, { dryRun: options.dryRun });
  return { ...plan, dryRun: options.dryRun, partialDownloads, packages, warnings };
}

/** Installed boxes by name, oldest version first; a name asked for that is not installed is a UserError. */
async function installedByName(home: string, names: readonly string[] | undefined): Promise<Map<string, InstalledBox[]>> {
  const byName = new Map<string, InstalledBox[]>();
  for (const box of await listBoxes(home)) byName.set(box.metadata.name, [...(byName.get(box.metadata.name) ?? []), box]);
  if (names === undefined || names.length === 0) return byName;
  const missing = names.filter((name) => !byName.has(name));
  if (missing.length > 0) throw new UserError(`box ${missing.join(', ')} is not installed`, { hint: 'see installed boxes with: vmfile box list' });
  return new Map([...byName].filter(([name]) => names.includes(name)));
}

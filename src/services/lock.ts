/**
 * `vmfile lock [--update]`: show and verify Vmfile.lock against the installed boxes, or
 * record the boxes the Vmfile resolves to now. Verifying reads nothing it does not have
 * to (see store/digest.ts for the disk digest cache) and never writes the lock.
 */
import { hasStoredDeb, type DebOrigin } from '../box/deb-store.js';
import { boxFacts, findBox } from '../box/store.js';
import { debLabel, type DebRef } from '../vmfile/deb-ref.js';
import { pinnedStepPackages } from '../vmfile/lock-steps.js';
import { UserError } from '../errors.js';
import type { ServiceContext } from '../instance/context.js';
import { selectMachines } from '../instance/select.js';
import { checkLock } from '../lifecycle/box.js';
import { readLockFile, writeLockFile } from '../store/lockfile.js';
import { recordLockedBoxes, recordProject } from '../store/projects.js';
import type { Project } from '../vmfile/config.js';
import { compareEntry, lockedBoxRef, type LockEntry } from '../vmfile/lock.js';

export interface LockOptions {
  project: Project;
  machines?: readonly string[];
  /** Record the currently installed boxes instead of verifying. */
  update: boolean;
}

export type LockStatus = 'verified' | 'updated' | 'not locked' | 'box not installed' | 'mismatch';

export interface LockReport {
  machine: string;
  status: LockStatus;
  entry?: LockEntry;
  /** For 'mismatch': one sentence per difference. */
  differences: string[];
  /** For a box built from a recipe: where each pinned package is on this host. */
  packages?: PackageAvailability;
  /** What the lock pins for the machine's provisioning steps. */
  steps?: StepPins;
}

export interface StepPins {
  pinned: number;
  /** Not in this host's package store: a step gets them from the mirror, unpinned, until they are. */
  missing: string[];
  /** Installed by a step without a file to pin: "name version architecture (step)". */
  unpinned: string[];
}

async function stepPins(home: string, entry: LockEntry): Promise<StepPins | undefined> {
  const steps = Object.entries(entry.steps ?? {});
  if (steps.length === 0) return undefined;
  const pinned = pinnedStepPackages(entry);
  const missing: string[] = [];
  for (const deb of pinned) if ((await hasStoredDeb(home, deb.sha256)) === undefined) missing.push(debLabel(deb));
  return { pinned: pinned.length, missing, unpinned: steps.flatMap(([step, record]) => (record.unpinned ?? []).map((label) => `${label} (step "${step}")`)) };
}

export interface PackageAvailability {
  pinned: number;
  /** In this host's package store, by how each got there. */
  stored: Partial<Record<DebOrigin, number>>;
  /** Not in the store: vmup would ask the recipe's mirrors, then the snapshot mirror. */
  missing: number;
  list: (DebRef & { available: DebOrigin | null })[];
}

async function availability(home: string, entry: LockEntry): Promise<PackageAvailability | undefined> {
  const packages = entry.recipe?.packages;
  if (packages === undefined) return undefined;
  const stored: Partial<Record<DebOrigin, number>> = {};
  const list: PackageAvailability['list'] = [];
  for (const deb of packages) {
    const origin = (await hasStoredDeb(home, deb.sha256)) ?? null;
    if (origin !== null) stored[origin] = (stored[origin] ?? 0) + 1;
    list.push({ ...deb, available: origin });
  }
  return { pinned: packages.length, stored, missing: list.filter((deb) => deb.available === null).length, list };
}

export async function lock(options: LockOptions, context: ServiceContext): Promise<LockReport[]> {
  return options.update ? updateLock(options, context) : verifyLock(options, context);
}

async function verifyLock(options: LockOptions, context: ServiceContext): Promise<LockReport[]> {
  const file = await readLockFile(options.project.dir);
  const reports: LockReport[] = [];
  for (const machine of selectMachines(options.project, options.machines)) {
    const entry = file.machines[machine.name];
    if (entry === undefined) {
      reports.push({ machine: machine.name, status: 'not locked', differences: [] });
      continue;
    }
    const ref = lockedBoxRef(machine.box, entry);
    const box = await findBox(context.home, ref);
    const packages = await availability(context.home, entry);
    const steps = await stepPins(context.home, entry);
    const withPackages = { ...(packages === undefined ? {} : { packages }), ...(steps === undefined ? {} : { steps }) };
    if (box === undefined) {
      // Not a difference: vmup gets the locked box (rebuilt from its pinned packages, or downloaded and checked).
      const how = packages !== undefined ? `vmup rebuilds it from the ${packages.pinned} pinned packages and checks it against the lock` : entry.url !== undefined ? 'vmup downloads it and checks it against the lock' : 'vmup builds or asks for it, and checks it against the lock';
      reports.push({ machine: machine.name, status: 'box not installed', entry, differences: [`box ${ref.name}${ref.version === undefined ? '' : ` ${ref.version}`} is not installed here; ${how}`], ...withPackages });
      continue;
    }
    const differences = compareEntry(entry, await boxFacts(box));
    reports.push({ machine: machine.name, status: differences.length === 0 ? 'verified' : 'mismatch', entry, differences, ...withPackages });
  }
  return reports;
}

/** Resolves each machine's box as if there were no lock (the Vmfile's pin, else the newest installed) and records it. */
async function updateLock(options: LockOptions, context: ServiceContext): Promise<LockReport[]> {
  const machines = selectMachines(options.project, options.machines);
  const reports: LockReport[] = [];
  for (const machine of machines) {
    const box = await findBox(context.home, machine.box);
    if (box === undefined) {
      throw new UserError(`machine "${machine.name}": box ${machine.box.name}${machine.box.version === undefined ? '' : ` ${machine.box.version}`} is not installed, so there is nothing to lock`, {
        hint: 'vmup builds or fetches it and writes the lock; or install it with vmfile box add / vmfile box build first',
      });
    }
    await checkLock(options.project, machine, box, { update: true });
    reports.push({ machine: machine.name, status: 'updated', ...entryOf(await readLockFile(options.project.dir), machine.name), differences: [] });
  }
  // box prune keeps what this lock pins only if it knows the project.
  await recordProject(context.home, { project: options.project.dir, vmfile: options.project.vmfilePath });
  // Machines no longer in the Vmfile have no business in its lock (only on a full update).
  if (options.machines === undefined || options.machines.length === 0) {
    const file = await readLockFile(options.project.dir);
    const known = new Set(options.project.machines.map((machine) => machine.name));
    const kept = Object.fromEntries(Object.entries(file.machines).filter(([name]) => known.has(name)));
    await writeLockFile(options.project.dir, { ...file, machines: kept });
  }
  const locked = Object.values((await readLockFile(options.project.dir)).machines).map((entry) => ({ name: entry.box, version: entry.version }));
  await recordLockedBoxes(context.home, { project: options.project.dir, vmfile: options.project.vmfilePath }, locked);
  return reports;
}

function entryOf(file: Awaited<ReturnType<typeof readLockFile>>, machine: string): { entry?: LockEntry } {
  const entry = file.machines[machine];
  return entry === undefined ? {} : { entry };
}

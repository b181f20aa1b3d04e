/**
 * `vmfile cache list` and `vmfile cache prune`: the warm states and provisioning layers
 * (lifecycle/warm.ts, lifecycle/layers.ts), what they take on disk, and which machines
 * stand on them.
 *
 * A machine stands on the state its disk is made over and on every state under that one.
 * Which state that is comes from the machine disk's own header (its backing file), read
 * without opening the backing file: the truth, also for machines made before records
 * named their state. A machine whose disk cannot be read might stand on any of them, so
 * prune then removes nothing, and says why.
 */
import { readdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { BusyError, VmfileError } from '../errors.js';
import { listWarmStates, removeState, type WarmSummary } from '../lifecycle/warm.js';
import { driverFor, genericDriver } from '../driver/registry.js';
import { machinePaths, warmPaths, warmStatesDir } from '../store/layout.js';
import { readMachineState } from '../store/machine.js';
import { withLock } from '../store/lock.js';
import { pathExists } from '../store/exists.js';
import { listProjects, projectMachineNames, withUsesLock } from '../store/projects.js';

export interface CacheEntry extends WarmSummary {
  /** Machines that stand on it, for people: 'machine "web" of /src/app'. */
  usedBy: string[];
}

export interface CacheListing {
  entries: CacheEntry[];
  /** Machines whose disk could not be read: while there are any, prune removes nothing. */
  unknown: string[];
  /** Keys of states being made, or left unfinished by a vmfile that was killed while making them. */
  unfinished: string[];
}

/** `locked`: the caller holds the uses lock (store/projects.ts), as prune does. */
export async function listCache(home: string, options: { locked?: boolean } = {}): Promise<CacheListing> {
  const states = await listWarmStates(home);
  const byKey = new Map(states.map((state) => [state.key, state]));
  const usedBy = new Map<string, string[]>();
  const unknown: string[] = [];
  const standsOn = (first: string | undefined, who: string) => {
    // Its state, then each state under it (a record that names itself, or a loop, ends it).
    const seen = new Set<string>();
    for (let key = first; key !== undefined && !seen.has(key); key = byKey.get(key)?.layer?.parent) {
      seen.add(key);
      usedBy.set(key, [...(usedBy.get(key) ?? []), who]);
    }
  };
  const { projects } = await listProjects(home, options);
  for (const { project, readable, machines: registered } of projects) {
    // What a project registered counts whether or not it can be read now: a moved or
    // unmounted project's disks still stand on their states by absolute path.
    for (const [machine, use] of Object.entries(registered ?? {})) {
      if (readable && !(await pathExists(machinePaths(project, machine).dir))) continue;
      for (const key of use.states) standsOn(key, `machine "${machine}" of ${project}${readable ? '' : ' (which cannot be read now)'}`);
    }
    if (!readable && registered === undefined) {
      unknown.push(`${project} cannot be read, and it ran vmup before vmfile kept what its machines stand on; if it is gone for good, vmfile global-status --prune forgets it`);
    }
    if (!readable) continue;
    for (const machine of await projectMachineNames(project)) {
      const who = `machine "${machine}" of ${project}`;
      const paths = machinePaths(project, machine);
      let backing: string | undefined;
      try {
        const state = await readMachineState(paths.state);
        const driver = driverFor(machine, paths.dir, { recorded: state?.provider });
        if (!(await driver.hasDisk())) continue;
        backing = await driver.base();
      } catch (error) {
        if (!(error instanceof VmfileError)) throw error;
        unknown.push(`${who}: ${error.message}`);
        continue;
      }
      standsOn(backing !== undefined && dirname(dirname(backing)) === warmStatesDir(home) ? stateKeyOf(backing) : undefined, who);
    }
  }
  const unfinished = (await readdir(warmStatesDir(home)).catch(() => [] as string[])).filter((name) => /^[0-9a-f]{32}\.partial$/.test(name)).map((name) => name.slice(0, 32));
  return { entries: states.map((state) => ({ ...state, usedBy: usedBy.get(state.key) ?? [] })), unknown, unfinished };
}

/** `<home>/warm/<key>/overlay.qcow2` → key. */
function stateKeyOf(backing: string): string | undefined {
  const key = backing.split('/').at(-2);
  return key !== undefined && /^[0-9a-f]{32}$/.test(key) ? key : undefined;
}

export interface CachePruneResult extends CacheListing {
  dryRun: boolean;
  removed: CacheEntry[];
  /** Unfinished states whose maker is gone: their QEMU stopped and their files removed. */
  cleared: string[];
}

/**
 * Removes every state and layer that no machine stands on (or may: see store/projects.ts), each under its own lock, and
 * what killed makers left: a maker's QEMU outlives it, and would otherwise run until the
 * next maker of the same key, which a changed Vmfile never starts. A state being made
 * holds its lock and is left alone.
 */
export async function pruneCache(home: string, options: { dryRun: boolean }): Promise<CachePruneResult> {
  // Decided and done under the uses lock: a machine registers what it will stand on under it before its disk is made.
  return withUsesLock(home, 'prune the cache', () => prune(home, options));
}

async function prune(home: string, options: { dryRun: boolean }): Promise<CachePruneResult> {
  const listing = await listCache(home, { locked: true });
  const unused = listing.unknown.length > 0 ? [] : listing.entries.filter((entry) => entry.usedBy.length === 0);
  const cleared: string[] = [];
  if (!options.dryRun) {
    for (const entry of unused) await removeState(home, entry.key, `the cached state ${entry.key}`);
    for (const key of listing.unfinished) {
      const partial = warmPaths(home, key, true);
      const gone = await withLock(partial.lock, `the cached state ${key}`, 'clear what a killed vmfile left', async () => {
        await genericDriver(partial.dir).destroy();
        return true;
      }).catch((error: unknown) => {
        if (error instanceof BusyError) return false;
        throw error;
      });
      if (gone) cleared.push(key);
    }
  }
  return { ...listing, dryRun: options.dryRun, removed: unused, cleared };
}


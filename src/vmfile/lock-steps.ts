/**
 * What provisioning adds to a machine's lock entry, after each step: the digests of its
 * declared outputs, and the Debian packages it installed. Pure: store/lockfile.ts reads
 * and writes the file around these, one writer at a time.
 */
import { debLabel, type DebRef } from './deb-ref.js';
import { orderedEntry, type LockEntry, type LockFile } from './lock-file.js';

/**
 * The lock with `step`'s outputs of `machine` set to `outputs`, and what differs from
 * the digests it had (each as a sentence). A machine the lock does not name is left out:
 * vmup writes its entry before any step runs.
 */
export function withOutputs(lock: LockFile, machine: string, step: string, outputs: Record<string, string>): { lock: LockFile; changes: string[] } | undefined {
  const entry = lock.machines[machine];
  if (entry === undefined) return undefined;
  const before = entry.outputs?.[step] ?? {};
  const changes = [
    ...Object.entries(outputs)
      .filter(([path, sha256]) => before[path] !== undefined && before[path] !== sha256)
      .map(([path, sha256]) => `${path}: ${before[path]?.slice(0, 12)}... is now ${sha256.slice(0, 12)}...`),
    ...Object.keys(before)
      .filter((path) => outputs[path] === undefined)
      .map((path) => `${path}: no longer made`),
  ];
  return { lock: { ...lock, machines: { ...lock.machines, [machine]: orderedEntry({ ...entry, outputs: { ...entry.outputs, [step]: outputs } }) } }, changes };
}

/** What a step installed this time: packages pinned with their .deb's digest, and "name version architecture" of those without one. */
export interface StepInstall {
  packages: readonly DebRef[];
  unpinned: readonly string[];
}

/**
 * The lock with what `step` of `machine` installed merged into what it had recorded: a
 * package (by name and architecture) takes its new version, and one the step did not
 * touch this time stays (a step run again installs nothing it already has). Undefined
 * when the lock does not name the machine; `changed` lists the packages that are new or
 * at another version.
 */
export function withStepPackages(lock: LockFile, machine: string, step: string, install: StepInstall): { lock: LockFile; changed: string[] } | undefined {
  const entry = lock.machines[machine];
  if (entry === undefined) return undefined;
  const before = entry.steps?.[step];
  const key = (deb: Pick<DebRef, 'name' | 'architecture'>) => `${deb.name}:${deb.architecture}`;
  const merged = new Map((before?.packages ?? []).map((deb) => [key(deb), deb]));
  const changed: string[] = [];
  for (const deb of install.packages) {
    const old = merged.get(key(deb));
    if (old?.sha256 !== deb.sha256) changed.push(debLabel(deb));
    merged.set(key(deb), deb);
  }
  // A package pinned now is no longer unpinned; one still unpinned stays named.
  const unpinned = new Set([...(before?.unpinned ?? []), ...install.unpinned].filter((label) => !install.packages.some((deb) => debLabel(deb) === label)));
  const next = { packages: [...merged.values()], ...(unpinned.size === 0 ? {} : { unpinned: [...unpinned] }) };
  return { lock: { ...lock, machines: { ...lock.machines, [machine]: orderedEntry({ ...entry, steps: { ...entry.steps, [step]: next } }) } }, changed };
}

/** Every package a machine's lock entry pins: its box's, then its steps'; none for no entry. */
export function lockedPackages(entry: LockEntry | undefined): DebRef[] {
  return [...(entry?.recipe?.packages ?? []), ...pinnedStepPackages(entry)];
}

/** The "name version architecture" of what the entry's steps installed and could not pin. */
export function unpinnedStepPackages(entry: LockEntry | undefined): string[] {
  return Object.values(entry?.steps ?? {}).flatMap((record) => record.unpinned ?? []);
}

/** Every package a machine's lock entry pins for its steps, once each (by digest); none for no entry. */
export function pinnedStepPackages(entry: LockEntry | undefined): DebRef[] {
  const all = new Map<string, DebRef>();
  for (const record of Object.values(entry?.steps ?? {})) for (const deb of record.packages) all.set(deb.sha256, deb);
  return [...all.values()];
}

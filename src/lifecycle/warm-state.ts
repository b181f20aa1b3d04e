/**
 * Warm states on disk: what one is (its record, its saved memory, its generic machine's
 * disk and login), how it is found by key, listed, made at most once under its lock,
 * and removed. Making one is lifecycle/capture.ts; when one is made is warm.ts (a box's)
 * and layers.ts (a step's).
 *
 * Everything about the shape that the saved state depends on is in the key, so a
 * changed box, QEMU or shape simply finds no state and makes a new one. A state is
 * made in `<key>.partial` under a lock and renamed when complete: a vmfile or QEMU
 * killed while making it leaves a partial directory, which the next maker clears.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import { z } from 'zod';
import type { InstalledBox } from '../box/store.js';
import type { Accel } from '../driver/driver.js';
import { genericDriver } from '../driver/registry.js';
import { ConfigError, UserError } from '../errors.js';
import { warmPaths, warmStatesDir, type WarmPaths } from '../store/layout.js';
import { bootIdLocationSchema } from '../store/machine.js';
import { withLock } from '../store/lock.js';
import type { MachineBoot } from '../vmfile/boot.js';
import { debRefSchema } from '../vmfile/deb-ref.js';

/** Bumped when what a warm state holds changes; older states are then never used. */
export const WARM_FORMAT = 1;
/**
 * Changed when vmfile's QEMU gets devices that saved memory must include to use them
 * (the guest agent's port): new states are made, and older ones, still whole and
 * listed, serve the machines made from them until `vmfile cache prune`.
 */
const WARM_DEVICES = 'guest-agent';

export interface WarmShape {
  cpus: number;
  /** Bytes. */
  memory: number;
  /** Bytes: the guest's file system was grown to it when the state was made. */
  disk: number;
  accel: Accel;
  boot: MachineBoot;
  /** A second NIC, for a private network (its link is dead in the generic machine). */
  privateNic: boolean;
}

const warmRecordSchema = z.strictObject({
  format: z.literal(WARM_FORMAT),
  key: z.string().regex(/^[0-9a-f]{32}$/),
  box: z.strictObject({ name: z.string(), version: z.string(), sha256: z.string() }),
  shape: z.strictObject({ cpus: z.number(), memory: z.number(), disk: z.number(), accel: z.enum(['kvm', 'tcg']), boot: z.enum(['kernel', 'bios', 'uefi']), privateNic: z.boolean() }),
  qemu: z.string(),
  user: z.string(),
  /** The VM generation ID the state was saved with; every machine started from it gets another. */
  generation: z.string().uuid(),
  /** Where the saved memory holds the kernel's boot ID; absent when the guest did not show it, and then machines from the state share it. */
  bootId: bootIdLocationSchema.optional(),
  createdAt: z.string(),
  /** A provisioning layer (lifecycle/layers.ts): the state `parent` after one step ran in it. */
  layer: z
    .strictObject({
      parent: z.string().regex(/^[0-9a-f]{32}$/),
      step: z.strictObject({ id: z.string(), name: z.string(), hash: z.string() }),
      /** The packages the step had installed (as Vmfile.lock records them) when the layer was made: a machine over it records them too. */
      installed: z.strictObject({ packages: z.array(debRefSchema).max(100_000), unpinned: z.array(z.string().max(300)).max(100_000) }).optional(),
    })
    .optional(),
});

export type WarmRecord = z.infer<typeof warmRecordSchema>;

export interface WarmState {
  record: WarmRecord;
  paths: WarmPaths;
  /** The saved memory and devices (a migration stream). */
  memory: string;
  /** The generic machine's disk: read-only, the base of every machine made from the state. */
  disk: string;
  /** The generic machine's login, which reaches a machine from the state until it has become itself. */
  login: { privateKey: string; hostPublicKey: string };
}

/**
 * The state under `key`, made by `make` when there is none. Made under the state's lock,
 * which the others wait for (up to `waitMs`): machines started together that need one
 * state find it made once. A damaged state is refused, never made again over its machines.
 */
export async function ensureState(home: string, key: string, what: string, waitMs: number, make: () => Promise<WarmState>): Promise<WarmState> {
  const found = await readWarmState(home, key);
  if (found !== undefined) return found;
  await mkdir(warmStatesDir(home), { recursive: true, mode: 0o700 });
  return withLock(warmPaths(home, key).lock, what, 'make it', async () => {
    // Another vmup may have made it while this one waited for the lock.
    const made = await readWarmState(home, key);
    if (made !== undefined) return made;
    await refuseDamaged(warmPaths(home, key), key);
    return make();
  }, { waitMs });
}

export function warmKey(box: InstalledBox, shape: WarmShape, qemu: string): string {
  const { name, version, disk, boot } = box.metadata;
  const identity = { format: WARM_FORMAT, devices: WARM_DEVICES, box: { name, version, sha256: disk.sha256, boot }, shape, qemu };
  return createHash('sha256').update(canonicalJson(identity)).digest('hex').slice(0, 32);
}

/**
 * JSON with every object's keys in sorted order: the key of a state must not depend on
 * the order a box's metadata was built in (an import and a later read of box.json give
 * the same fields in different orders).
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, inner: unknown) =>
    inner !== null && typeof inner === 'object' && !Array.isArray(inner)
      ? Object.fromEntries(Object.entries(inner).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : inner,
  );
}

/** A complete state, or undefined when there is none or it is damaged. */
export async function readWarmState(home: string, key: string): Promise<WarmState | undefined> {
  const paths = warmPaths(home, key);
  const found = await inspectState(paths, key);
  return 'record' in found ? { record: found.record, ...stateFiles(paths) } : undefined;
}

/** Where a state's parts are: its memory, and its generic machine's disk and login. */
export function stateFiles(paths: WarmPaths): Omit<WarmState, 'record'> {
  const disk = genericDriver(paths.dir).diskFile();
  if (disk === undefined) throw new Error('the generic machine\'s driver keeps no disk file');
  return { paths, memory: paths.memory, disk, login: { privateKey: paths.machine.privateKey, hostPublicKey: paths.machine.hostPublicKey } };
}

/** The state's record when the state is whole, else what is wrong with it. */
async function inspectState(paths: WarmPaths, key: string): Promise<{ record: WarmRecord } | { problem: string }> {
  const text = await readFile(paths.record, 'utf8').catch(() => undefined);
  if (text === undefined) return { problem: `${paths.record} is missing` };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { problem: `${paths.record} is not JSON (${(error as Error).message})` };
  }
  const result = warmRecordSchema.safeParse(value);
  if (!result.success) return { problem: `${paths.record} is not a warm state's record` };
  if (result.data.key !== key) return { problem: `${paths.record} names another state (${result.data.key})` };
  const { disk, login } = stateFiles(paths);
  for (const file of [paths.memory, disk, login.privateKey, login.hostPublicKey]) {
    if (!(await stat(file).then(() => true, () => false))) return { problem: `${file} is missing` };
  }
  return { record: result.data };
}

/**
 * A state directory that is there but not whole is not replaced: machines made from it
 * may have its disk under their own. Said with what is wrong and what to do.
 */
async function refuseDamaged(paths: WarmPaths, key: string): Promise<void> {
  if (!(await stat(paths.dir).then(() => true, () => false))) return;
  const found = await inspectState(paths, key);
  if ('record' in found) return;
  throw new ConfigError(`the warm state ${paths.dir} is damaged: ${found.problem}`, {
    hint: 'machines made from it have its disk under their own: destroy them, then remove that directory (vmup makes the state again); or set warmStart: false in the Vmfile',
  });
}

export interface WarmSummary {
  key: string;
  box: { name: string; version: string };
  shape: WarmRecord['shape'];
  /** Bytes on disk: the saved memory and the disk layer. */
  bytes: number;
  createdAt: string;
  layer?: WarmRecord['layer'];
}

/** Every complete warm state, with the disk it takes. */
export async function listWarmStates(home: string): Promise<WarmSummary[]> {
  const entries = await readdir(warmStatesDir(home)).catch(() => [] as string[]);
  const states: WarmSummary[] = [];
  for (const key of entries.filter((entry) => /^[0-9a-f]{32}$/.test(entry)).sort()) {
    const state = await readWarmState(home, key);
    if (state === undefined) continue;
    const sizes = await Promise.all([state.memory, state.disk].map((file) => stat(file).then((s) => s.blocks * 512, () => 0)));
    states.push({ key, box: { name: state.record.box.name, version: state.record.box.version }, shape: state.record.shape, bytes: sizes.reduce((a, b) => a + b, 0), createdAt: state.record.createdAt, ...(state.record.layer === undefined ? {} : { layer: state.record.layer }) });
  }
  return states;
}

/**
 * Removes the warm states of one box version, with the box: the caller has checked
 * that no machine uses that version, and so none has a state's disk under its own.
 */
export async function removeWarmStates(home: string, box: { name: string; version: string }): Promise<number> {
  let removed = 0;
  for (const state of await listWarmStates(home)) {
    if (state.box.name !== box.name || state.box.version !== box.version) continue;
    await removeState(home, state.key, `the warm state of box ${box.name} ${box.version}`);
    removed++;
  }
  return removed;
}

/** Removes a whole state (or layer) under its lock; the caller knows no machine stands on it. */
export async function removeState(home: string, key: string, what: string): Promise<void> {
  const paths = warmPaths(home, key);
  await withLock(paths.lock, what, 'remove it', () => rm(paths.dir, { recursive: true, force: true }));
}

/**
 * The keys a machine made over `state` stands on: that state, then each parent down to
 * the box's warm state. Rejects when one of them is no longer whole (a concurrent prune
 * removed it), or the chain loops.
 */
export async function stateChain(home: string, state: WarmState): Promise<string[]> {
  const keys: string[] = [];
  for (let key: string | undefined = state.record.key; key !== undefined; ) {
    if (keys.includes(key)) throw new ConfigError(`the warm state ${warmPaths(home, key).dir} names itself among its parents`, { hint: 'remove it with vmfile cache prune after destroying the machines made from it' });
    const found = await readWarmState(home, key);
    if (found === undefined) throw new UserError(`the warm state ${warmPaths(home, key).dir} was removed while a machine was being made over it (a vmfile cache prune?)`, { hint: 'run vmup again: the state is made again' });
    keys.push(key);
    key = found.record.layer?.parent;
  }
  return keys;
}

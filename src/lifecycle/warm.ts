/**
 * Warm states: a new machine from saved running state instead of a boot.
 *
 * The first time a box is used with a given shape (CPUs, memory, disk, accelerator,
 * boot, QEMU version), vmfile boots it once as a generic machine: its own throwaway
 * login key and host key, hostname vmfile-warm, cloud-init finished, the disk synced.
 * Then the driver pauses it and writes its memory and devices to a file (saveState);
 * its disk is kept as a read-only layer. A new machine of that shape gets its own
 * copy-on-write disk over that layer and starts from the saved memory, then becomes
 * itself over SSH (guest/first-login.ts): its own host key, login key, machine-id and
 * hostname, its RNG reseeded from the host, its clock set.
 *
 * Everything about the shape that the saved state depends on is in the key, so a
 * changed box, QEMU or shape simply finds no state and makes a new one. A state is
 * made in `<key>.partial` under a lock and renamed when complete: a vmfile or QEMU
 * killed while making it leaves a partial directory, which the next maker clears.
 */
import { createHash, randomUUID } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { z } from 'zod';
import type { InstalledBox } from '../box/store.js';
import { loadSeedTemplates, renderSeed, writeSeed } from '../cloudinit/seed.js';
import { qemuDriver, qemuVersion } from '../driver/qemu/driver.js';
import { BOOT_ID_PROBE, parseBootIdLocation } from '../guest/boot-id.js';
import { CLOUD_INIT_WAIT } from '../provision/runner.js';
import type { Accel, Driver, StartSpec } from '../driver/driver.js';
import { ConfigError, GuestError } from '../errors.js';
import { SshTimeout, waitForSsh, type SshTarget } from '../ssh/client.js';
import { generateKeyPair, publicKeyBlob, readPublicKey } from '../ssh/keys.js';
import { writeJsonAtomic } from '../store/json.js';
import { warmPaths, warmStatesDir, type MachinePaths, type WarmPaths } from '../store/layout.js';
import { bootIdLocationSchema, type BootIdLocation } from '../store/machine.js';
import { WARM_PRIVATE_MAC } from '../network/address.js';
import { withLock } from '../store/lock.js';
import { inPhase, type Reporter } from '../ui/reporter.js';
import type { MachineBoot } from '../vmfile/boot.js';
import { formatSize } from '../vmfile/size.js';
import { counted } from '../ui/words.js';

/** Bumped when what a warm state holds changes; older states are then never used. */
const WARM_FORMAT = 1;
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
  layer: z.strictObject({ parent: z.string().regex(/^[0-9a-f]{32}$/), step: z.strictObject({ id: z.string(), name: z.string(), hash: z.string() }) }).optional(),
});

export type WarmRecord = z.infer<typeof warmRecordSchema>;

export interface WarmState {
  record: WarmRecord;
  paths: WarmPaths;
}

/** The state for this box and shape, made now (a generic boot) when there is none yet. */
export async function ensureWarmState(home: string, box: InstalledBox, shape: WarmShape, options: { reporter: Reporter; machine: string; bootTimeout: number }): Promise<WarmState> {
  const qemu = await qemuVersion();
  const key = warmKey(box, shape, qemu);
  const title = `Making a warm state of box ${box.metadata.name} (${counted(shape.cpus, 'CPU')}, ${formatSize(shape.memory)}): one generic boot, reused by every new machine of this shape`;
  return ensureState(home, key, `the warm state of box ${box.metadata.name}`, options.bootTimeout * 1000 + 180_000, () =>
    inPhase(options.reporter, options.machine, title, async (phase) => {
      const state = await makeWarmState(home, key, box, shape, qemu, options.bootTimeout, (text) => phase.progress(text));
      if (state.record.bootId === undefined) {
        options.reporter.notice(`box ${box.metadata.name}: its kernel did not show where it keeps its boot ID, so machines started from this warm state share /proc/sys/kernel/random/boot_id`);
      }
      return state;
    }),
  );
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
  return createHash('sha256').update(JSON.stringify(identity)).digest('hex').slice(0, 32);
}

/** A complete state, or undefined when there is none or it is damaged. */
export async function readWarmState(home: string, key: string): Promise<WarmState | undefined> {
  const paths = warmPaths(home, key);
  const found = await inspectState(paths, key);
  return 'record' in found ? { record: found.record, paths } : undefined;
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
  for (const file of [paths.memory, paths.machine.overlay, paths.machine.privateKey, paths.machine.hostPublicKey]) {
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

async function makeWarmState(home: string, key: string, box: InstalledBox, shape: WarmShape, qemu: string, bootTimeout: number, progress: (text: string) => void): Promise<WarmState> {
  const partial = warmPaths(home, key, true);
  const driver = qemuDriver('vmfile-warm', partial.machine);
  // A leftover of a maker that was killed: its QEMU may still run.
  await driver.destroy();
  await mkdir(partial.dir, { recursive: true, mode: 0o700 });
  const paths = partial.machine;
  await generateKeyPair(paths.privateKey, 'vmfile warm state login');
  await generateKeyPair(paths.hostPrivateKey, 'vmfile warm state host key');
  await driver.create(box, shape.disk);
  const generation = randomUUID();
  await writeGenericSeed(paths, key, box.metadata.user);
  try {
    const started = await driver.start(genericStartSpec(box, shape, generation));
    progress('booting the generic machine');
    const target = await genericTarget(paths, started.sshPort, box.metadata.user);
    const session = await waitForSsh(target, {
      deadline: Date.now() + bootTimeout * 1000,
      onAttempt: (elapsed) => progress(`booting the generic machine (${Math.round(elapsed / 1000)} s)`),
      giveUp: async () => ((await driver.pid()) === undefined ? 'the warm state\'s generic machine: QEMU exited while booting' : undefined),
    }).catch((error: unknown) => {
      throw error instanceof SshTimeout ? new GuestError(`the warm state's generic machine did not answer SSH within ${bootTimeout} s (${error.lastError})`, { hint: `its console: ${paths.serialLog}` }) : error;
    });
    let bootId: BootIdLocation | undefined;
    try {
      progress('waiting for cloud-init to finish');
      // Whatever cloud-init's verdict, nothing of it is still running.
      await session.exec(`(${CLOUD_INIT_WAIT}); sudo -n sync`);
      let probed = '';
      if ((await session.exec(BOOT_ID_PROBE, { onStdout: (chunk) => void (probed += chunk) })) === 0) bootId = parseBootIdLocation(probed);
    } finally {
      session.close();
    }
    progress('saving its memory and devices');
    return await sealState(home, driver, {
      format: WARM_FORMAT,
      key,
      box: { name: box.metadata.name, version: box.metadata.version, sha256: box.metadata.disk.sha256 },
      shape: { cpus: shape.cpus, memory: shape.memory, disk: shape.disk, accel: shape.accel, boot: shape.boot, privateNic: shape.privateNic },
      qemu,
      user: box.metadata.user,
      generation,
      ...(bootId === undefined ? {} : { bootId }),
      createdAt: new Date().toISOString(),
    });
  } catch (error) {
    await driver.destroy().catch(() => {});
    throw error;
  }
}

/** The generic machine's seed: the same for a state and every layer over it. */
export async function writeGenericSeed(paths: MachinePaths, key: string, user: string): Promise<void> {
  await writeSeed(
    paths.seedDir,
    renderSeed(await loadSeedTemplates(), {
      machine: 'vmfile-warm',
      instanceId: `vmfile-warm-${key}`,
      hostname: 'vmfile-warm',
      user,
      authorizedKey: await readPublicKey(paths.publicKey),
      hostPrivateKey: await readFile(paths.hostPrivateKey, 'utf8'),
      hostPublicKey: await readPublicKey(paths.hostPublicKey),
    }),
  );
}

export function genericStartSpec(box: InstalledBox, shape: WarmShape, generation: string): StartSpec {
  // The private NIC is on no network: no traffic, but the device is there.
  const privateNetwork = shape.privateNic ? { privateNetwork: { mac: WARM_PRIVATE_MAC } } : {};
  return { machine: 'vmfile-warm', box, boot: shape.boot, accel: shape.accel, cpus: shape.cpus, memory: shape.memory, ports: [], folders: [], fromSavedState: false, generation, ...privateNetwork };
}

export async function genericTarget(paths: MachinePaths, sshPort: number, user: string): Promise<SshTarget> {
  return { label: 'the warm state\'s generic machine', host: '127.0.0.1', port: sshPort, user, privateKey: await readFile(paths.privateKey, 'utf8'), hostKey: publicKeyBlob(await readPublicKey(paths.hostPublicKey)) };
}

/**
 * Saves the paused generic machine's memory, makes its disk read-only (it is a layer
 * under every machine made from it, and must never change), writes the record last and
 * renames the partial directory: only a whole state ever has its final name.
 */
export async function sealState(home: string, driver: Driver, record: WarmRecord): Promise<WarmState> {
  const partial = warmPaths(home, record.key, true);
  await driver.saveState(partial.memory);
  await chmod(partial.machine.overlay, 0o400);
  await writeJsonAtomic(partial.record, record);
  const final = warmPaths(home, record.key);
  await rename(partial.dir, final.dir);
  return { record, paths: final };
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
    const sizes = await Promise.all([state.paths.memory, state.paths.machine.overlay].map((file) => stat(file).then((s) => s.blocks * 512, () => 0)));
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

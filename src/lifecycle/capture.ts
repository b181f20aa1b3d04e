/**
 * Making a warm state or a provisioning layer: a generic machine (throwaway login and
 * host key, hostname vmfile-warm, no folders, ports or network) started through the one
 * start procedure (lifecycle/procedure.ts), then paused and saved: its memory and
 * devices to a file, its disk kept read-only as the base of the machines made from it.
 *
 * A warm state's generic machine boots the box; its requirements are that cloud-init
 * finished, the first boot is on disk, and where its kernel keeps the boot ID is known.
 * A layer's starts from its parent's memory over a disk on the parent's, keeps the
 * parent's login, gets the clock set, and runs one step. Either is made in
 * `<key>.partial` and renamed when whole, so a kill leaves nothing half-made under a
 * state's name; the next maker (or `vmfile cache prune`) clears the partial directory.
 */
import { randomUUID } from 'node:crypto';
import { copyFile, mkdir, rename } from 'node:fs/promises';
import type { InstalledBox } from '../box/store.js';
import type { Driver } from '../driver/driver.js';
import { genericDriver } from '../driver/registry.js';
import { WARM_PRIVATE_MAC } from '../network/address.js';
import { generateKeyPair } from '../ssh/keys.js';
import { writeJsonAtomic } from '../store/json.js';
import { warmPaths } from '../store/layout.js';
import { readLockFile } from '../store/lockfile.js';
import { MachineRecord } from '../store/machine.js';
import { within, type Phase, type Reporter } from '../ui/reporter.js';
import type { MachineConfig, Project } from '../vmfile/config.js';
import type { ProvisionStep } from '../vmfile/steps.js';
import { runStart, type Launching } from './procedure.js';
import { stateFiles, WARM_FORMAT, type WarmRecord, type WarmShape, type WarmState } from './warm-state.js';

/** The generic machine's name, in its record and on its seed. */
const GENERIC = 'vmfile-warm';

export interface Capture {
  home: string;
  key: string;
  box: InstalledBox;
  shape: WarmShape;
  /** The machine this is made for: messages name it, and it lends its boot timeout. */
  machine: string;
  bootTimeout: number;
  reporter: Reporter;
  /** The phase the user sees meanwhile; the generic machine's own phases are its progress lines. */
  phase: Phase;
  /** A layer: its parent state, and the step to run over it (with the project its files are in). */
  layer?: { parent: WarmState; step: ProvisionStep; hash: string; project: Project };
}

export async function captureState(job: Capture): Promise<WarmState> {
  const partial = warmPaths(job.home, job.key, true);
  const driver = genericDriver(partial.dir);
  // A leftover of a maker that was killed: its QEMU may still run.
  await driver.destroy();
  await mkdir(partial.dir, { recursive: true, mode: 0o700 });
  const parent = job.layer?.parent;
  const generation = randomUUID();
  const machine = genericMachine(job);
  const launching: Launching = {
    project: job.layer?.project ?? { dir: partial.dir, vmfilePath: '', loadedFiles: [], machines: [] },
    machine,
    box: job.box,
    paths: partial.machine,
    driver,
    reporter: within(job.phase, job.reporter),
    home: job.home,
    create: { title: 'creating the generic machine', run: () => createGeneric(job, driver) },
    seed: { machine: GENERIC, hostname: GENERIC },
    start: 'boot',
    accel: job.shape.accel,
    launch: { cpus: job.shape.cpus, memory: job.shape.memory, boot: job.shape.boot, generation },
    // The private NIC is on no network: no traffic, but the device is there.
    spec: async (launch) => ({ machine: GENERIC, box: job.box, boot: launch.boot, accel: job.shape.accel, cpus: launch.cpus, memory: launch.memory, ports: [], folders: [], generation, ...(job.shape.privateNic ? { privateNetwork: { mac: WARM_PRIVATE_MAC } } : {}) }),
    title: (warm) => (warm ? 'starting the generic machine from its parent\'s memory' : 'booting the generic machine'),
    generic: {},
    provision: job.layer === undefined ? 'none' : { kind: 'only', names: [job.layer.step.id] },
    folders: [],
  };
  try {
    const done = await runStart(launching);
    const bootId = parent === undefined ? done.generic?.bootId : parent.record.bootId;
    if (parent === undefined && bootId === undefined) {
      job.reporter.notice(`box ${job.box.metadata.name}: its kernel did not show where it keeps its boot ID, so machines started from this warm state share /proc/sys/kernel/random/boot_id`);
    }
    job.phase.progress('saving its memory and devices');
    const record: WarmRecord = {
      format: WARM_FORMAT,
      key: job.key,
      box: { name: job.box.metadata.name, version: job.box.metadata.version, sha256: job.box.metadata.disk.sha256 },
      shape: { cpus: job.shape.cpus, memory: job.shape.memory, disk: job.shape.disk, accel: job.shape.accel, boot: job.shape.boot, privateNic: job.shape.privateNic },
      qemu: parent?.record.qemu ?? (await driver.hypervisor()),
      user: job.box.metadata.user,
      generation,
      ...(bootId === undefined ? {} : { bootId }),
      createdAt: new Date().toISOString(),
      ...(job.layer === undefined ? {} : { layer: await layerOf(job.layer, job.machine) }),
    };
    return await seal(job.home, driver, record);
  } catch (error) {
    await driver.destroy().catch(() => {});
    throw error;
  }
}

/** A layer's record: its parent, its step, and what the step installed as the project's lock now records it. */
async function layerOf(layer: NonNullable<Capture['layer']>, machine: string): Promise<NonNullable<WarmRecord['layer']>> {
  const installed = (await readLockFile(layer.project.dir)).machines[machine]?.steps?.[layer.step.name];
  return {
    parent: layer.parent.record.key,
    step: { id: layer.step.id, name: layer.step.name, hash: layer.hash },
    ...(installed === undefined ? {} : { installed: { packages: installed.packages, unpinned: installed.unpinned ?? [] } }),
  };
}

/**
 * The generic machine as a Vmfile machine would be: the shape of the one it is made for,
 * its boot timeout, its one step (a layer), nothing of its own identity.
 */
function genericMachine(job: Capture): MachineConfig {
  return {
    name: job.machine,
    box: { name: job.box.metadata.name, version: job.box.metadata.version },
    cpus: job.shape.cpus,
    memory: job.shape.memory,
    disk: job.shape.disk,
    hostname: GENERIC,
    accel: job.shape.accel,
    bootTimeout: job.bootTimeout,
    warmStart: false,
    provider: { type: 'qemu' },
    provision: job.layer === undefined ? [] : [job.layer.step],
    ports: [],
    folders: [],
    primary: false,
    autostart: false,
  };
}

/**
 * Its keys (a layer keeps its parent's login and host key: the take-over replaces them
 * in every machine alike), its disk over the box or the parent's, and its record. A
 * layer's record says where the parent's memory is, which its one start loads.
 */
async function createGeneric(job: Capture, driver: Driver): Promise<MachineRecord> {
  const paths = warmPaths(job.home, job.key, true).machine;
  const parent = job.layer?.parent;
  if (parent === undefined) {
    await generateKeyPair(paths.privateKey, 'vmfile warm state login');
    await generateKeyPair(paths.hostPrivateKey, 'vmfile warm state host key');
  } else {
    const from = parent.paths.machine;
    for (const [source, target] of [[from.privateKey, paths.privateKey], [from.publicKey, paths.publicKey], [from.hostPrivateKey, paths.hostPrivateKey], [from.hostPublicKey, paths.hostPublicKey]] as const) {
      await copyFile(source, target);
    }
  }
  await driver.create(job.box, job.shape.disk, parent?.disk);
  await writeJsonAtomic(paths.provisioned, { steps: {} });
  return MachineRecord.create(paths.state, {
    name: GENERIC,
    instanceId: `vmfile-warm-${parent?.record.key ?? job.key}`,
    createdAt: new Date().toISOString(),
    box: { name: job.box.metadata.name, version: job.box.metadata.version, sha256: job.box.metadata.disk.sha256 },
    user: job.box.metadata.user,
    ...(parent === undefined ? { checkRoot: true as const } : { warmMemory: parent.memory, initialized: true }),
  });
}

/**
 * Saves the paused generic machine's memory (the driver leaves its disk read-only: a
 * layer under every machine made from it), writes the record last and renames the
 * partial directory: only a whole state ever has its final name.
 */
async function seal(home: string, driver: Driver, record: WarmRecord): Promise<WarmState> {
  const partial = warmPaths(home, record.key, true);
  await driver.saveState(partial.memory);
  await writeJsonAtomic(partial.record, record);
  const final = warmPaths(home, record.key);
  await rename(partial.dir, final.dir);
  return { record, ...stateFiles(final) };
}

/**
 * The one start procedure: a list of named steps, each saying when it applies, run in
 * order, followed by the guest's requirements (guest/requirements.ts) and then "ready".
 * Every start goes through it, and they differ only in which steps apply:
 *
 * - a boot of a new machine: created, seed written, QEMU started (from a warm state
 *   when it was made over one), then every requirement;
 * - a boot of a halted machine: (first boot set up again,) seed written, QEMU started;
 * - a resume: QEMU started from the saved memory;
 * - a start a killed vmfile left behind, finished by the next vmup: QEMU is running, so
 *   only "cut-short start stopped" (then the start runs again from the top) or "guest
 *   continued" apply before the requirements;
 * - the generic machine a warm state or provisioning layer is made from
 *   (lifecycle/capture.ts): the same steps for a machine of no identity, saved at the end.
 *
 * The record changes only through the start's MachineRecord, at these moments:
 * created; launched (ports, `starting`), before any saved memory is loaded; the warm
 * memory consumed, just before the guest first runs; then whatever the requirements
 * record; ready. Whatever phase a kill comes in, the next vmup reads from the record
 * what to do: a machine whose guest never ran from its warm memory is stopped and started
 * from it again; one whose guest ran is finished.
 */
import { readFile } from 'node:fs/promises';
import type { InstalledBox } from '../box/store.js';
import { loadSeedTemplates, renderSeed, writeSeed } from '../cloudinit/seed.js';
import type { Accel, Driver, StartSpec, Started } from '../driver/driver.js';
import type { PlannedFolder } from '../folders/plan.js';
import { meetRequirements, type GuestStart } from '../guest/requirements.js';
import { readPublicKey } from '../ssh/keys.js';
import type { MachinePaths } from '../store/layout.js';
import { withoutRuntime, type MachineRecord, type MachineState } from '../store/machine.js';
import { inPhase, type Phase, type Reporter } from '../ui/reporter.js';
import type { MachineBoot } from '../vmfile/boot.js';
import type { MachineConfig, Project } from '../vmfile/config.js';
import { newInstanceId } from './create.js';

/** What the process is started with; a suspended machine resumes with what it was suspended with. */
export interface Launch {
  cpus: number;
  /** Bytes. */
  memory: number;
  boot: MachineBoot;
  /** The VM generation ID, kept for the machine's life once it has one (a machine made over a warm state). */
  generation?: string | undefined;
}

export interface Launching {
  project: Project;
  machine: MachineConfig;
  box: InstalledBox;
  paths: MachinePaths;
  driver: Driver;
  reporter: Reporter;
  home: string;
  /** The record; undefined until "created". */
  record?: MachineRecord;
  /** Makes the machine (keys, disk, record), under the phase title `creating`. */
  create?: { title: string; run: (phase: Phase) => Promise<MachineRecord> };
  /** The name and hostname cloud-init is told (a generic machine's are not a machine's). */
  seed: { machine: string; hostname: string };
  start: 'boot' | 'resume';
  accel: Accel;
  launch: Launch;
  /** The driver's spec for this start, less what the procedure adds (saved memory, callbacks). */
  spec: (launch: Launch) => Promise<Omit<StartSpec, 'fromSavedState' | 'fromWarmState' | 'bootId' | 'onLaunched' | 'beforeContinue'>>;
  /** The title of the "QEMU started" phase. */
  title: (warm: boolean) => string;
  /** Its process runs already: a start that a killed vmfile left, finished now. */
  running?: { pid: number } | undefined;
  /** Set by "QEMU started": whether this start launched the process, and whether its memory came from a warm state. */
  launched?: boolean;
  warm?: boolean;
  generic?: GuestStart['generic'];
  provision: GuestStart['provision'];
  folders: readonly PlannedFolder[];
}

interface Step {
  name: string;
  applies: (c: Launching) => boolean | Promise<boolean>;
  run: (c: Launching) => Promise<void>;
}

const STEPS: readonly Step[] = [
  {
    name: 'created',
    applies: (c) => c.record === undefined,
    run: async (c) => {
      const { create } = c;
      if (create === undefined) throw new Error('a start without a record has nothing to create it with');
      c.record = await inPhase(c.reporter, c.machine.name, create.title, create.run);
      delete c.create;
    },
  },
  {
    // Its process runs, but the record never said where (killed before it was launched),
    // or its guest never ran from the warm memory it was loading: nothing of it can be
    // finished, and nothing is lost by starting it again.
    name: 'cut-short start stopped',
    applies: (c) => c.running !== undefined && (record(c).state.sshPort === undefined || record(c).state.warmMemory !== undefined),
    run: async (c) => {
      c.reporter.info(c.machine.name, `its last start was cut short before the guest ran (pid ${c.running?.pid}); starting it again`);
      await c.driver.stop({ graceful: false, timeoutMs: 0 });
      c.running = undefined;
    },
  },
  {
    // Its first boot never reached SSH (QEMU killed, timeout): cloud-init's first-boot
    // work may be half on disk (ext4 loses unflushed new files, e.g. the SSH host key).
    // A new instance id makes cloud-init do it all again; the disk's data is kept.
    name: 'first boot set up again',
    applies: (c) => c.running === undefined && c.start === 'boot' && c.generic === undefined && record(c).state.initialized !== true && record(c).state.warmMemory === undefined && record(c).state.launch !== undefined,
    run: async (c) => {
      await record(c).update((state) => ({ ...state, instanceId: newInstanceId() }));
      c.reporter.info(c.machine.name, 'its first boot did not finish; cloud-init will set it up again');
    },
  },
  {
    name: 'seed written',
    applies: (c) => c.running === undefined && c.start === 'boot',
    run: async (c) => {
      const state = record(c).state;
      const { paths } = c;
      const seed = renderSeed(await loadSeedTemplates(), {
        machine: c.seed.machine,
        instanceId: state.instanceId,
        hostname: c.seed.hostname,
        user: state.user,
        authorizedKey: await readPublicKey(paths.publicKey),
        hostPrivateKey: await readFile(paths.hostPrivateKey, 'utf8'),
        hostPublicKey: await readPublicKey(paths.hostPublicKey),
      });
      await writeSeed(paths.seedDir, seed);
    },
  },
  { name: 'QEMU started', applies: (c) => c.running === undefined, run: launch },
  {
    // Killed after its warm memory was consumed but before the guest was continued.
    name: 'guest continued',
    applies: async (c) => c.running !== undefined && c.launched !== true && (await c.driver.paused()),
    run: async (c) => {
      if (await c.driver.continue()) c.reporter.info(c.machine.name, 'its guest was left paused by a start that was cut short; continued it');
    },
  },
];

function record(c: Launching): MachineRecord {
  if (c.record === undefined) throw new Error(`machine "${c.machine.name}" has no record yet`);
  return c.record;
}

async function launch(c: Launching): Promise<void> {
  const state = record(c).state;
  const warm = c.start === 'boot' && state.warmMemory !== undefined ? { memory: state.warmMemory, bootId: state.warmBootId } : undefined;
  // A Vagrant box's published login reaches nobody: its SSH port opens once the machine is its own.
  const holdSsh = state.login === 'vagrant-insecure-key' && c.driver.features.heldSsh;
  let consumed = false;
  const spec: StartSpec = {
    ...(await c.spec(c.launch)),
    fromSavedState: c.start === 'resume',
    ...(holdSsh ? { holdSsh } : {}),
    ...(warm === undefined ? {} : { fromWarmState: warm.memory, ...(warm.bootId === undefined ? {} : { bootId: warm.bootId }) }),
    onLaunched: async (started: Started) => {
      await record(c).update((current) => ({
        ...withoutRuntime(current),
        sshPort: started.sshPort,
        ...(holdSsh ? { sshHeld: true as const } : {}),
        forwards: started.forwards,
        accel: c.accel,
        bootedAt: new Date().toISOString(),
        launch: { cpus: c.launch.cpus, memory: c.launch.memory, boot: c.launch.boot, ...(c.launch.generation === undefined ? {} : { generation: c.launch.generation }) },
        folders: [...c.folders],
        starting: c.start,
      }));
    },
    // From here on the disk goes on from that memory: it is never loaded again.
    beforeContinue: async () => {
      consumed = true;
      await record(c).update(({ warmMemory: _memory, warmBootId: _bootId, ...rest }) => rest);
    },
  };
  c.warm = warm !== undefined;
  const started = await inPhase(c.reporter, c.machine.name, c.title(c.warm), () => c.driver.start(spec)).catch(async (error: unknown) => {
    // A state that would not load is not tried again: the next start boots from the disk.
    if (warm !== undefined && !consumed) await record(c).update(({ warmMemory: _memory, warmBootId: _bootId, ...rest }) => withoutRuntime(rest)).catch(() => undefined);
    throw error;
  });
  c.running = { pid: started.pid };
  c.launched = true;
}

/** Runs every step that applies, then the guest's requirements, then marks the machine ready. */
export async function runStart(c: Launching): Promise<GuestStart> {
  for (const step of STEPS) {
    if (await step.applies(c)) await step.run(c);
  }
  const state: MachineState = record(c).state;
  if (c.running === undefined || state.sshPort === undefined) throw new Error(`machine "${c.machine.name}": the start procedure ended without a running process`);
  const guest: GuestStart = {
    project: c.project,
    machine: c.machine,
    paths: c.paths,
    driver: c.driver,
    reporter: c.reporter,
    home: c.home,
    record: record(c),
    start: state.starting ?? c.start,
    warm: c.warm === true,
    ...(c.generic === undefined ? {} : { generic: c.generic }),
    provision: c.provision,
    folders: c.folders,
    pid: c.running.pid,
    sshPort: state.sshPort,
    stepsRun: 0,
  };
  await meetRequirements(guest);
  await guest.record.update(({ starting: _starting, ...ready }) => ready);
  return guest;
}

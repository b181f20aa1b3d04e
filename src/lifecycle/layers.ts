/**
 * Provisioning layers: a Vmfile's first `once` steps, kept as warm states one over the
 * other, like a Dockerfile's build cache but for running machines.
 *
 * A layer is the warm state of its parent (the box's warm state, or the layer before)
 * after one step ran in it: vmfile starts the parent's generic machine from its saved
 * memory on a disk over the parent's, sets its clock, runs the step, syncs, and saves
 * memory and disk as a new state (lifecycle/warm.ts makes and seals it the same way).
 * Its key is the parent's key with the step's hash (provision/runner.ts stepHash: the
 * step as written, with its script's or files' contents, args and env), so a changed
 * step finds no layer, and neither does any step after it.
 *
 * A new machine starts from the deepest layer its steps match, records those steps as
 * done, becomes itself (guest/first-login.ts) and runs only the rest. Cached steps run
 * in the generic machine: before folders are synced, under the hostname vmfile-warm,
 * with no private network. A step that needs any of those says `cache: false`, which
 * ends the cached run there. Only the leading steps that are `once`, run in the guest
 * (shell, script, file) and cacheable are layered; Ansible steps depend on the other
 * machines. A step that fails while its layer is made is not cached: the machine runs
 * it itself, where its failure can be looked at.
 */
import { randomUUID, createHash } from 'node:crypto';
import { copyFile, mkdir } from 'node:fs/promises';
import type { InstalledBox } from '../box/store.js';
import type { Accel } from '../driver/driver.js';
import { qemuDriver } from '../driver/qemu/driver.js';
import { GuestError } from '../errors.js';
import { syncGuestClock } from '../guest/communicator.js';
import type { ServiceContext } from '../instance/context.js';
import { runSteps, stepHash, StepFailedError } from '../provision/runner.js';
import { SshTimeout, waitForSsh } from '../ssh/client.js';
import { warmPaths } from '../store/layout.js';
import type { ProvisionRecord } from '../store/provision-record.js';
import { inPhase } from '../ui/reporter.js';
import type { MachineBoot } from '../vmfile/boot.js';
import type { ProvisionStep } from '../vmfile/steps.js';
import type { MachinePlan } from './start.js';
import { ensureState, ensureWarmState, genericStartSpec, genericTarget, sealState, writeGenericSeed, type WarmShape, type WarmState } from './warm.js';

const LAYER_FORMAT = 1;

/** What a new machine starts from: a warm state, and the steps it already holds. */
export interface StartingState {
  state: WarmState;
  /** Steps done in the state's layers, in order, as the provisioning record keeps them. */
  cached: ProvisionRecord['steps'];
}

/**
 * The warm state (or deepest layer) a new machine starts from, made now where missing;
 * undefined when warm start is not asked for or cannot apply (then it boots, and says
 * why). Layers are used only for a plain vmup: --no-provision runs no step, --provision
 * runs every step again, and --no-cache runs them all on the machine.
 */
export async function startingStateFor(
  plan: MachinePlan,
  accel: Accel,
  boot: MachineBoot,
  options: { projectDir: string; provision: 'boot' | 'all' | 'none'; noCache: boolean },
  context: ServiceContext,
): Promise<StartingState | undefined> {
  const { machine, box, folders } = plan;
  if (machine.warmStart === false) return undefined;
  const reason =
    machine.provider.type !== 'qemu' ? `it runs on ${machine.provider.type}, which has no warm states yet`
    : boot !== 'kernel' ? 'its box boots with its own firmware'
    : box.metadata.firstLogin !== undefined ? 'its box is first reached with its own login (a Vagrant box)'
    : folders.some((folder) => folder.type !== 'rsync') ? 'it has a live (virtiofs or 9p) folder, a device the saved state does not have'
    : undefined;
  if (reason !== undefined) {
    // Said only to a Vmfile that asked for it: by default such a machine simply boots.
    if (machine.warmStart === true) context.reporter.notice(`machine "${machine.name}" boots from scratch although warmStart is set: ${reason}`);
    return undefined;
  }
  const shape: WarmShape = { cpus: machine.cpus, memory: machine.memory, disk: machine.disk, accel, boot, privateNic: machine.privateIp !== undefined };
  const made = { reporter: context.reporter, machine: machine.name, bootTimeout: machine.bootTimeout };
  let state = await ensureWarmState(context.home, box, shape, made);
  const cached: ProvisionRecord['steps'] = {};
  if (options.provision !== 'boot' || options.noCache) return { state, cached };
  for (const step of cacheableSteps(machine.provision)) {
    const hash = await stepHash(step, options.projectDir);
    const layer = await ensureLayer({ context, box, shape, parent: state, step, hash, ...made, projectDir: options.projectDir }).catch((error: unknown) => {
      // The step runs on the machine instead, where its failure can be looked at.
      if (!(error instanceof StepFailedError)) throw error;
      context.reporter.notice(
        `machine "${machine.name}": step "${step.name}" failed while its layer was made (${error.message}); it runs on the machine instead. A step that needs the machine's folders, hostname or private network cannot be cached: mark it cache: false`,
      );
      return undefined;
    });
    if (layer === undefined) break;
    state = layer;
    cached[step.id] = { hash, at: layer.record.createdAt };
  }
  return { state, cached };
}

/** The leading steps that can be layered: once, in the guest, and not `cache: false`. */
export function cacheableSteps(steps: readonly ProvisionStep[]): ProvisionStep[] {
  const leading: ProvisionStep[] = [];
  for (const step of steps) {
    if (step.run !== 'once' || step.kind === 'ansible' || step.cache === false) break;
    leading.push(step);
  }
  return leading;
}

export function layerKey(parent: string, hash: string): string {
  return createHash('sha256').update(JSON.stringify({ format: LAYER_FORMAT, parent, step: hash })).digest('hex').slice(0, 32);
}

/** One step to layer over `parent`, for the machine being made. */
interface LayerJob {
  context: ServiceContext;
  box: InstalledBox;
  shape: WarmShape;
  parent: WarmState;
  step: ProvisionStep;
  hash: string;
  machine: string;
  bootTimeout: number;
  projectDir: string;
}

async function ensureLayer(job: LayerJob): Promise<WarmState> {
  const key = layerKey(job.parent.record.key, job.hash);
  return ensureState(job.context.home, key, `the provisioning layer of step "${job.step.name}"`, job.bootTimeout * 1000 + 3_600_000, () =>
    inPhase(job.context.reporter, job.machine, `Caching step "${job.step.name}" as a provisioning layer`, () => makeLayer(job, key)),
  );
}

async function makeLayer(job: LayerJob, key: string): Promise<WarmState> {
  const { context, box, shape, parent, step, hash } = job;
  const partial = warmPaths(context.home, key, true);
  const driver = qemuDriver('vmfile-warm', partial.machine);
  // A leftover of a maker that was killed: its QEMU may still run.
  await driver.destroy();
  await mkdir(partial.dir, { recursive: true, mode: 0o700 });
  const from = parent.paths.machine;
  const paths = partial.machine;
  // The generic machine keeps its login and host key from layer to layer.
  for (const [source, target] of [[from.privateKey, paths.privateKey], [from.publicKey, paths.publicKey], [from.hostPrivateKey, paths.hostPrivateKey], [from.hostPublicKey, paths.hostPublicKey]] as const) {
    await copyFile(source, target);
  }
  await driver.create(box, shape.disk, from.overlay);
  await writeGenericSeed(paths, parent.record.key, parent.record.user);
  const generation = randomUUID();
  try {
    const started = await driver.start({ ...genericStartSpec(box, shape, generation), fromWarmState: parent.paths.memory });
    const session = await waitForSsh(await genericTarget(paths, started.sshPort, parent.record.user), {
      deadline: Date.now() + job.bootTimeout * 1000,
      giveUp: async () => ((await driver.pid()) === undefined ? 'the generic machine of a provisioning layer: QEMU exited while starting' : undefined),
    }).catch((error: unknown) => {
      throw error instanceof SshTimeout ? new GuestError(`the generic machine of a provisioning layer did not answer SSH within ${job.bootTimeout} s (${error.lastError})`, { hint: `its console: ${paths.serialLog}` }) : error;
    });
    try {
      await syncGuestClock(session);
      const record: ProvisionRecord = { steps: {} };
      await runSteps([step], { kind: 'only', names: [step.id] }, {
        machine: job.machine,
        user: parent.record.user,
        projectDir: job.projectDir,
        session,
        reporter: context.reporter,
        recordPath: `${partial.dir}/provisioned.json`,
        record,
      });
    } finally {
      session.close();
    }
    return await sealState(context.home, driver, {
      ...parent.record,
      key,
      generation,
      createdAt: new Date().toISOString(),
      layer: { parent: parent.record.key, step: { id: step.id, name: step.name, hash } },
    });
  } catch (error) {
    await driver.destroy().catch(() => {});
    throw error;
  }
}

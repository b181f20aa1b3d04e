/**
 * Provisioning layers: a Vmfile's first `once` steps, kept as warm states one over the
 * other, like a Dockerfile's build cache but for running machines.
 *
 * A layer is the warm state of its parent (the box's warm state, or the layer before)
 * after one step ran in it: vmfile starts the parent's generic machine from its saved
 * memory on a disk over the parent's, sets its clock, runs the step, syncs, and saves
 * memory and disk as a new state (lifecycle/capture.ts, as for the box's warm state).
 * Its key is the parent's key with the step's hash (provision/runner.ts stepHash: the
 * step as written, with its script's or files' contents, args and env), so a changed
 * step finds no layer, and neither does any step after it.
 *
 * The packages Vmfile.lock pins for the machine's steps are given to the generic
 * machine as to any (provision/pinned-source.ts), so they are in the key too; what the
 * step installed is kept in the layer's record, and a machine over the layer records it
 * in its own lock.
 *
 * A new machine starts from the deepest layer its steps match, records those steps as
 * done, becomes itself (guest/first-login.ts) and runs only the rest. Cached steps run
 * in the generic machine: before folders are synced, under the hostname vmfile-warm,
 * with no private network. A step that needs any of those says `cache: false`, which
 * ends the cached run there. Only the leading steps that are `once`, run in the guest
 * (shell, script, file) and cacheable are layered; Ansible steps depend on the other
 * machines, and a step that declares outputs runs where they are recorded. A step that
 * fails while its layer is made is not cached: the machine runs
 * it itself, where its failure can be looked at.
 */
import { createHash } from 'node:crypto';
import type { InstalledBox } from '../box/store.js';
import type { ServiceContext } from '../instance/context.js';
import { stepHash, StepFailedError } from '../provision/runner.js';
import { readLockFile, recordStepPackages } from '../store/lockfile.js';
import type { ProvisionRecord } from '../store/provision-record.js';
import { inPhase } from '../ui/reporter.js';
import type { Project } from '../vmfile/config.js';
import type { DebRef } from '../vmfile/deb-ref.js';
import { pinnedStepPackages } from '../vmfile/lock-steps.js';
import type { ProvisionStep } from '../vmfile/steps.js';
import { captureState } from './capture.js';
import type { StartingState } from './create.js';
import type { MachinePlan } from './plan.js';
import { ensureWarmState } from './warm.js';
import { ensureState, type WarmShape, type WarmState } from './warm-state.js';

const LAYER_FORMAT = 1;

/**
 * The warm state (or deepest layer) a new machine starts from, made now where missing;
 * undefined when warm start is not asked for or cannot apply (then it boots, and says
 * why). Layers are used only for a plain vmup: --no-provision runs no step, --provision
 * runs every step again, and --no-cache runs them all on the machine.
 */
export async function startingStateFor(plan: MachinePlan, options: { project: Project; provision: 'boot' | 'all' | 'none'; noCache: boolean }, context: ServiceContext): Promise<StartingState | undefined> {
  const { machine, box, folders, boot } = plan;
  const { driver } = plan.instance;
  if (machine.warmStart === false) return undefined;
  const reason =
    !driver.features.warmStart ? `it runs on ${driver.location().driver}, which keeps no warm states yet`
    : boot !== 'kernel' ? 'its box boots with its own firmware'
    : box.metadata.firstLogin !== undefined ? 'its box is first reached with its own login (a Vagrant box)'
    : folders.some((folder) => folder.type !== 'rsync') ? 'it has a live (virtiofs or 9p) folder, a device the saved state does not have'
    : undefined;
  if (reason !== undefined) {
    // Said only to a Vmfile that asked for it: by default such a machine simply boots.
    if (machine.warmStart === true) context.reporter.notice(`machine "${machine.name}" boots from scratch although warmStart is set: ${reason}`);
    return undefined;
  }
  const shape: WarmShape = { cpus: machine.cpus, memory: machine.memory, disk: machine.disk, accel: plan.accel, boot, privateNic: machine.privateIp !== undefined };
  const made = { reporter: context.reporter, machine: machine.name, bootTimeout: machine.bootTimeout };
  let state = await ensureWarmState(context.home, box, shape, driver, made);
  const cached: ProvisionRecord['steps'] = {};
  if (options.provision !== 'boot' || options.noCache) return { state, cached };
  // The packages the lock pins for the steps are given to every layer's guest: they are part of what it is.
  const pins = pinsDigest(pinnedStepPackages((await readLockFile(options.project.dir)).machines[machine.name]));
  for (const step of cacheableSteps(machine.provision)) {
    const hash = await stepHash(step, options.project.dir);
    const layer = await ensureLayer({ context, box, shape, parent: state, step, hash, pins, ...made, project: options.project }).catch((error: unknown) => {
      // The step runs on the machine instead, where its failure can be looked at.
      if (!(error instanceof StepFailedError)) throw error;
      context.reporter.notice(
        `machine "${machine.name}": step "${step.name}" failed while its layer was made (${error.message}); it runs on the machine instead. A step that needs the machine's folders, hostname or private network cannot be cached: mark it cache: false`,
      );
      return undefined;
    });
    if (layer === undefined) break;
    // What the step installed when the layer was made is this project's too (the same pins, the same packages).
    const installed = layer.record.layer?.installed;
    if (installed !== undefined) await recordStepPackages(options.project.dir, machine.name, step.name, installed);
    state = layer;
    cached[step.id] = { hash, at: layer.record.createdAt };
  }
  return { state, cached };
}

/** The leading steps that can be layered: once, in the guest, and not `cache: false`. */
export function cacheableSteps(steps: readonly ProvisionStep[]): ProvisionStep[] {
  const leading: ProvisionStep[] = [];
  for (const step of steps) {
    // A step with declared outputs runs in the machine itself, where its outputs are hashed and recorded.
    if (step.run !== 'once' || step.kind === 'ansible' || step.cache === false || step.outputs !== undefined) break;
    leading.push(step);
  }
  return leading;
}

/** `pins`: the digest of the packages the lock pins for the machine's steps, when it pins any (pinsDigest). */
export function layerKey(parent: string, hash: string, pins?: string): string {
  return createHash('sha256').update(JSON.stringify({ format: LAYER_FORMAT, parent, step: hash, ...(pins === undefined ? {} : { pins }) })).digest('hex').slice(0, 32);
}

/** One digest for a set of pinned packages (their files' digests, in order); undefined for none, so layers made without pins keep their keys. */
export function pinsDigest(debs: readonly DebRef[]): string | undefined {
  if (debs.length === 0) return undefined;
  return createHash('sha256').update(debs.map((deb) => deb.sha256).sort().join('\n')).digest('hex');
}

/** One step to layer over `parent`, for the machine being made. */
interface LayerJob {
  context: ServiceContext;
  box: InstalledBox;
  shape: WarmShape;
  parent: WarmState;
  step: ProvisionStep;
  hash: string;
  pins: string | undefined;
  machine: string;
  bootTimeout: number;
  project: Project;
}

async function ensureLayer(job: LayerJob): Promise<WarmState> {
  const key = layerKey(job.parent.record.key, job.hash, job.pins);
  const { context, box, shape, parent, step, hash, machine, bootTimeout, project } = job;
  return ensureState(context.home, key, `the provisioning layer of step "${step.name}"`, bootTimeout * 1000 + 3_600_000, () =>
    inPhase(context.reporter, machine, `Caching step "${step.name}" as a provisioning layer`, (phase) =>
      captureState({ home: context.home, key, box, shape, machine, bootTimeout, reporter: context.reporter, phase, layer: { parent, step, hash, project } }),
    ),
  );
}

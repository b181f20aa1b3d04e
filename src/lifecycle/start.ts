/**
 * Starting one planned machine, whatever it is now: created (if new), then booted
 * fresh, or continued from saved memory (suspended), or left as it is (running). Both
 * starts hand the guest to the same list of requirements (guest/requirements.ts).
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { InstalledBox } from '../box/store.js';
import { loadSeedTemplates, renderSeed, writeSeed } from '../cloudinit/seed.js';
import { chooseAccel, type HostInfo } from '../driver/qemu/driver.js';
import type { Accel, StartSpec } from '../driver/driver.js';
import { UserError } from '../errors.js';
import type { PlannedFolder } from '../folders/plan.js';
import { provisionMachine, reportChangedSteps } from '../guest/provisioner.js';
import { meetRequirements } from '../guest/requirements.js';
import { withRunningMachine } from '../guest/running.js';
import { describeStatus, inspect, isRunning, type Instance, type RunningInstance } from '../instance/inspect.js';
import type { ServiceContext } from '../instance/context.js';
import { driftOf } from '../instance/drift.js';
import { macFor } from '../network/address.js';
import { readPublicKey } from '../ssh/keys.js';
import { writeMachineState, type MachineState } from '../store/machine.js';
import { readRecord } from '../store/provision-record.js';
import { inPhase } from '../ui/reporter.js';
import type { MachineConfig, Project } from '../vmfile/config.js';
import { formatSize } from '../vmfile/size.js';
import { machineBoot, type MachineBoot } from '../vmfile/boot.js';
import { createMachine, newInstanceId } from './create.js';
import { startingStateFor } from './layers.js';
import { counted } from '../ui/words.js';

export interface StartOptions {
  project: Project;
  /** 'boot' = Vagrant's default; 'all' = --provision; 'none' = --no-provision. */
  provision: 'boot' | 'all' | 'none';
  /** --no-cache: a new machine runs every step itself (lifecycle/layers.ts). */
  noCache?: boolean;
}

export interface UpResult {
  machine: string;
  outcome: 'booted' | 'already running' | 'resumed';
  sshPort: number;
  accel: string;
  stepsRun: number;
}

export interface MachinePlan {
  machine: MachineConfig;
  box: InstalledBox;
  folders: PlannedFolder[];
}

/** Call with the machine lock held. */
export async function startMachine(plan: MachinePlan, options: StartOptions, host: HostInfo, context: ServiceContext): Promise<UpResult> {
  const { machine } = plan;
  const current = await inspect(options.project.dir, machine.name, machine.provider);
  refuseIfUnusable(current);
  // A monitor that does not answer (busy with a save) is no reason to fail vmup here.
  if (isRunning(current) && (await current.driver.continueAfterIoError().catch(() => false))) {
    context.reporter.notice(`machine "${machine.name}" was paused by QEMU because its disk could not be written (the file system holding it was full); continued it`);
  }
  if (isRunning(current) && current.state.starting !== undefined) return finishStart(plan, current, options, context);
  if (isRunning(current)) {
    context.reporter.info(machine.name, `already running (pid ${current.pid}); SSH on 127.0.0.1:${current.state.sshPort}`);
    const drift = driftOf(machine, current.state);
    if (drift.length > 0) {
      context.reporter.notice(`machine "${machine.name}" runs with settings that differ from the Vmfile:\n${drift.map((line) => `  - ${line}`).join('\n')}\n  vmfile reload${options.project.machines.length > 1 ? ` ${machine.name}` : ''} applies them`);
    }
    let stepsRun = 0;
    if (options.provision !== 'all') await reportChangedSteps(options.project, machine, await readRecord(current.paths.provisioned), context.reporter);
    if (options.provision === 'all') {
      stepsRun = await withRunningMachine(options.project, machine.name, (running, session) =>
        provisionMachine({ project: options.project, machine, state: running.state, paths: running.paths, session }, { kind: 'all' }, context.reporter),
      );
    }
    return { machine: machine.name, outcome: 'already running', sshPort: current.state.sshPort, accel: current.state.accel ?? 'tcg', stepsRun };
  }
  // A machine starts where it was created, whatever the Vmfile names now.
  const moved = current.state === undefined ? undefined : driftOf(machine, current.state).find((line) => line.startsWith('provider '));
  if (moved !== undefined) context.reporter.notice(`machine "${machine.name}" starts where it was created: ${moved}`);
  if (current.status === 'suspended' && current.state !== undefined) return resume(plan, current, current.state, options, host, context);
  return boot(plan, current, options, host, context);
}

/** A machine that is broken or unreachable cannot be used: says why, and what to do. */
export function refuseIfUnusable(machine: Instance): void {
  if (machine.status !== 'broken' && machine.status !== 'unreachable') return;
  throw new UserError(`machine "${machine.name}" ${describeStatus(machine)}`, {
    hint: machine.status === 'unreachable'
      ? 'nothing was changed; once its host answers again, run this again (vmfile status shows it)'
      : `vmfile destroy ${machine.name} clears it (the box is kept); vmup then creates it again`,
  });
}

async function boot(plan: MachinePlan, current: Instance, options: StartOptions, host: HostInfo, context: ServiceContext): Promise<UpResult> {
  const { machine, box, folders } = plan;
  const { reporter } = context;
  const { paths, driver } = current;
  let state = current.state;
  const bootWith = machineBoot(machine.name, machine.firmware, box.metadata);
  const accel = chooseAccel(machine.accel, context.env['VMFILE_ACCEL'], host);
  if (accel.notice !== undefined) reporter.notice(accel.notice);
  if (current.status === 'not created' || state === undefined) {
    const from = await startingStateFor(plan, accel.accel, bootWith, { projectDir: options.project.dir, provision: options.provision, noCache: options.noCache === true }, context);
    const over = from === undefined ? '' : from.state.record.layer === undefined ? ' over its warm state' : ` over the provisioning layer of step "${from.state.record.layer.step.name}"`;
    state = await inPhase(reporter, machine.name, `Creating machine from box ${box.metadata.name} ${box.metadata.version}${over}`, (phase) => createMachine(machine, box, paths, driver, from, phase));
  } else if (state.initialized !== true && state.warmMemory === undefined) {
    // Its first boot never reached SSH (QEMU killed, timeout): cloud-init's first-boot
    // work may be half on disk (ext4 loses unflushed new files, e.g. the SSH host key).
    // A new instance id makes cloud-init do it all again; the disk's data is kept.
    state = { ...state, instanceId: newInstanceId() };
    await writeMachineState(paths.state, state);
    reporter.info(machine.name, 'its first boot did not finish; cloud-init will set it up again');
  }
  await writeSeed(
    paths.seedDir,
    renderSeed(await loadSeedTemplates(), {
      machine: machine.name,
      instanceId: state.instanceId,
      hostname: machine.hostname,
      user: state.user,
      authorizedKey: await readPublicKey(paths.publicKey),
      hostPrivateKey: await readFile(paths.hostPrivateKey, 'utf8'),
      hostPublicKey: await readPublicKey(paths.hostPublicKey),
    }),
  );
  // A machine made over a warm state keeps a VM generation ID device for its life.
  const generation = state.launch?.generation ?? (state.warmMemory === undefined ? undefined : randomUUID());
  const launch = { cpus: machine.cpus, memory: machine.memory, boot: bootWith, ...(generation === undefined ? {} : { generation }) };
  const { warmMemory, warmBootId } = state;
  const shape = `${accel.accel}, ${bootWith === 'kernel' ? '' : `${bootWith.toUpperCase()}, `}${counted(machine.cpus, 'CPU')}, ${formatSize(machine.memory)}`;
  const title = warmMemory === undefined ? `Starting QEMU (${shape})` : `Starting QEMU from the warm state (${shape})`;
  // Loaded at most once: from here on the disk goes on from it, so a later start boots.
  const { warmMemory: _once, warmBootId: _its, ...rest } = state;
  state = { ...rest, launch };
  await writeMachineState(paths.state, state);
  const started = await inPhase(reporter, machine.name, title, async () =>
    driver.start({ ...(await startSpec(plan, options.project, accel.accel, launch, folders, false, context)), ...(warmMemory === undefined ? {} : { fromWarmState: warmMemory, ...(warmBootId === undefined ? {} : { bootId: warmBootId }) }) }),
  );
  const booted = { ...state, sshPort: started.sshPort, forwards: started.forwards, accel: accel.accel, bootedAt: new Date().toISOString(), launch, folders, starting: 'boot' as const };
  await writeMachineState(paths.state, booted);
  const guest = { project: options.project, machine, paths, driver, reporter, start: 'boot', provision: options.provision, folders, state: booted } as const;
  const { stepsRun } = await meetRequirements(guest, started.pid);
  reporter.info(machine.name, `ready: vmssh${options.project.machines.length > 1 ? ` ${machine.name}` : ''} opens a shell`);
  return { machine: machine.name, outcome: 'booted', sshPort: started.sshPort, accel: accel.accel, stepsRun };
}

/**
 * Continues a suspended machine: QEMU starts from the saved memory with the CPUs and
 * memory it was suspended with, so the guest goes on where it stopped. The saved state
 * is dropped only once SSH answers again (a requirement of the resume).
 */
async function resume(plan: MachinePlan, current: Instance, suspended: MachineState, options: StartOptions, host: HostInfo, context: ServiceContext): Promise<UpResult> {
  const { machine } = plan;
  const { reporter } = context;
  const { paths, driver } = current;
  const saved = suspended.launch ?? { cpus: machine.cpus, memory: machine.memory };
  const launch = { ...saved, boot: saved.boot ?? machineBoot(machine.name, machine.firmware, plan.box.metadata) };
  if (launch.cpus !== machine.cpus || launch.memory !== machine.memory) {
    reporter.notice(`machine "${machine.name}" resumes with ${launch.cpus} CPUs and ${formatSize(launch.memory)} as suspended; run vmfile reload to apply the Vmfile's values`);
  }
  const accel = suspended.accel ?? chooseAccel(machine.accel, context.env['VMFILE_ACCEL'], host).accel;
  const folders = suspended.folders ?? [];
  const started = await inPhase(reporter, machine.name, 'Resuming from saved memory', async () => driver.start(await startSpec(plan, options.project, accel, launch, folders, true, context)));
  const state = { ...suspended, sshPort: started.sshPort, forwards: started.forwards, accel, launch, starting: 'resume' as const };
  await writeMachineState(paths.state, state);
  const guest = { project: options.project, machine, paths, driver, reporter, start: 'resume', provision: options.provision, folders, state } as const;
  const { stepsRun } = await meetRequirements(guest, started.pid);
  reporter.info(machine.name, 'resumed');
  return { machine: machine.name, outcome: 'resumed', sshPort: started.sshPort, accel, stepsRun };
}

/**
 * A machine whose QEMU runs but whose last start never got as far as ready (vmfile was
 * killed while it waited for SSH or provisioned): the same requirements are met now, so
 * that a first boot is flushed, folders synced and steps run, as that start would have.
 */
async function finishStart(plan: MachinePlan, current: RunningInstance, options: StartOptions, context: ServiceContext): Promise<UpResult> {
  const { machine } = plan;
  const { reporter } = context;
  const start = current.state.starting ?? 'boot';
  reporter.info(machine.name, `running (pid ${current.pid}), but its last ${start === 'boot' ? 'boot' : 'resume'} did not finish; finishing it`);
  const folders = current.state.folders ?? plan.folders;
  const guest = { project: options.project, machine, paths: current.paths, driver: current.driver, reporter, start, provision: options.provision, folders, state: current.state } as const;
  const { stepsRun } = await meetRequirements(guest, current.pid);
  reporter.info(machine.name, 'ready');
  return { machine: machine.name, outcome: start === 'boot' ? 'booted' : 'resumed', sshPort: current.state.sshPort, accel: current.state.accel ?? 'tcg', stepsRun };
}

async function startSpec(
  plan: MachinePlan,
  project: Project,
  accel: Accel,
  launch: { cpus: number; memory: number; boot: MachineBoot; generation?: string | undefined },
  folders: readonly PlannedFolder[],
  fromSavedState: boolean,
  context: ServiceContext,
): Promise<StartSpec> {
  const { machine, box } = plan;
  const privateNetwork = machine.privateIp === undefined ? undefined : { project: project.dir, mac: macFor(project.dir, machine.name, 1) };
  return {
    machine: machine.name,
    box,
    boot: launch.boot,
    accel,
    cpus: launch.cpus,
    memory: launch.memory,
    ports: machine.ports,
    folders,
    ...(privateNetwork === undefined ? {} : { privateNetwork }),
    fromSavedState,
    ...(launch.generation === undefined ? {} : { generation: launch.generation }),
    onPortMoved: (from, to, spec) =>
      context.reporter.notice(`machine "${machine.name}": host port ${from} is in use; guest port ${spec.guest}/${spec.protocol} is forwarded from ${spec.hostIp}:${to} instead`),
  };
}

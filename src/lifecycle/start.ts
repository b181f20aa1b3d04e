/**
 * Starting one planned machine, whatever it is now: created (if new) and booted fresh,
 * continued from saved memory (suspended), finished (its last start was cut short), or
 * left as it is (running). All of them are the one procedure of lifecycle/procedure.ts;
 * what differs here is only what it is told.
 */
import { randomUUID } from 'node:crypto';
import type { StartSpec } from '../driver/driver.js';
import { UserError } from '../errors.js';
import { provisionMachine, reportChangedSteps } from '../guest/provisioner.js';
import { withRunningMachine } from '../guest/running.js';
import { describeStatus, isRunning, type Instance, type RunningInstance } from '../instance/inspect.js';
import type { ServiceContext } from '../instance/context.js';
import { driftOf } from '../instance/drift.js';
import { macFor } from '../network/address.js';
import { MachineRecord, type MachineState } from '../store/machine.js';
import { readRecord } from '../store/provision-record.js';
import { registerMachineUse } from '../store/projects.js';
import { counted } from '../ui/words.js';
import { formatSize } from '../vmfile/size.js';
import { createMachine } from './create.js';
import { startingStateFor } from './layers.js';
import type { MachinePlan, StartOptions, UpResult } from './plan.js';
import { stateChain } from './warm-state.js';
import { runStart, type Launch, type Launching } from './procedure.js';

export type { MachinePlan, StartOptions, UpResult };

/** Call with the machine lock held; `plan.instance` was inspected under it. */
export async function startMachine(plan: MachinePlan, options: StartOptions, context: ServiceContext): Promise<UpResult> {
  const { machine, instance: current } = plan;
  refuseIfUnusable(current);
  // A monitor that does not answer (busy with a save) is no reason to fail vmup here.
  if (current.status === 'running' && (await current.driver.continueAfterIoError().catch(() => false))) {
    context.reporter.notice(`machine "${machine.name}" was paused by QEMU because its disk could not be written (the file system holding it was full); continued it`);
  }
  const state = current.state;
  if (current.status === 'running' && current.pid !== undefined && state !== undefined && (state.starting !== undefined || state.sshPort === undefined || state.warmMemory !== undefined)) {
    context.reporter.info(machine.name, `running (pid ${current.pid}), but its last ${state.starting === 'resume' ? 'resume' : 'boot'} did not finish; finishing it`);
    return run(plan, options, context, { start: state.starting ?? 'boot', record: new MachineRecord(current.paths.state, state), running: { pid: current.pid }, launch: launchOf(plan, state) }, 'booted');
  }
  if (isRunning(current)) return alreadyRunning(plan, current, options, context);
  // A machine starts where it was created, whatever the Vmfile names now.
  const moved = state === undefined ? undefined : driftOf(machine, state).find((line) => line.startsWith('provider '));
  if (moved !== undefined) context.reporter.notice(`machine "${machine.name}" starts where it was created: ${moved}`);
  if (current.status === 'suspended' && state !== undefined) {
    const saved = state.launch ?? { cpus: machine.cpus, memory: machine.memory };
    const launch = { ...saved, boot: saved.boot ?? plan.boot };
    if (launch.cpus !== machine.cpus || launch.memory !== machine.memory) {
      context.reporter.notice(`machine "${machine.name}" resumes with ${counted(launch.cpus, 'CPU')} and ${formatSize(launch.memory)} as suspended; run vmfile reload to apply the Vmfile's values`);
    }
    return run({ ...plan, accel: state.accel ?? plan.accel, folders: state.folders ?? [] }, options, context, { start: 'resume', record: new MachineRecord(current.paths.state, state), launch }, 'resumed');
  }
  if (plan.accelNotice !== undefined) context.reporter.notice(plan.accelNotice);
  if (current.status === 'not created' || state === undefined) {
    const from = await startingStateFor(plan, { project: options.project, provision: options.provision, noCache: options.noCache === true }, context);
    // Before its disk is made over them: a prune from now on keeps the states and the box (store/projects.ts).
    const states = from === undefined ? [] : await stateChain(context.home, from.state);
    const { project } = options;
    await registerMachineUse(context.home, { project: project.dir, vmfile: project.vmfilePath }, machine.name, { box: { name: plan.box.metadata.name, version: plan.box.metadata.version }, states }, async () => {
      if (from !== undefined) await stateChain(context.home, from.state);
    });
    const over = from === undefined ? '' : from.state.record.layer === undefined ? ' over its warm state' : ` over the provisioning layer of step "${from.state.record.layer.step.name}"`;
    const launch = { ...launchOf(plan, undefined), ...(from === undefined ? {} : { generation: randomUUID() }) };
    const create = { title: `Creating machine from box ${plan.box.metadata.name} ${plan.box.metadata.version}${over}`, run: () => createMachine(machine, plan.box, current.paths, current.driver, from) };
    return run(plan, options, context, { start: 'boot', create, launch }, 'booted');
  }
  return run(plan, options, context, { start: 'boot', record: new MachineRecord(current.paths.state, state), launch: launchOf(plan, state) }, 'booted');
}

/**
 * CPUs, memory and boot as the Vmfile and the box say now. A machine made over a warm
 * state keeps a VM generation ID device for its life (its saved memory has one).
 */
function launchOf(plan: MachinePlan, state: MachineState | undefined): Launch {
  const generation = state?.launch?.generation ?? (state?.warmMemory === undefined ? undefined : randomUUID());
  return { cpus: plan.machine.cpus, memory: plan.machine.memory, boot: plan.boot, ...(generation === undefined ? {} : { generation }) };
}

async function run(plan: MachinePlan, options: StartOptions, context: ServiceContext, how: Pick<Launching, 'start' | 'record' | 'create' | 'running' | 'launch'>, outcome: UpResult['outcome']): Promise<UpResult> {
  const { machine, instance } = plan;
  const shape = (launch: Launch) => `${plan.accel}, ${launch.boot === 'kernel' ? '' : `${launch.boot.toUpperCase()}, `}${counted(launch.cpus, 'CPU')}, ${formatSize(launch.memory)}`;
  const launching: Launching = {
    project: options.project,
    machine,
    box: plan.box,
    paths: instance.paths,
    driver: instance.driver,
    reporter: context.reporter,
    home: context.home,
    ...how,
    seed: { machine: machine.name, hostname: machine.hostname },
    accel: plan.accel,
    spec: async (launch) => machineSpec(plan, options, launch, context),
    title: (warm) => (how.start === 'resume' ? 'Resuming from saved memory' : warm ? `Starting QEMU from the warm state (${shape(how.launch)})` : `Starting QEMU (${shape(how.launch)})`),
    provision: options.provision,
    folders: plan.folders,
  };
  const done = await runStart(launching);
  const last = how.start === 'resume' ? 'resumed' : `ready: vmssh${options.project.machines.length > 1 ? ` ${machine.name}` : ''} opens a shell`;
  context.reporter.info(machine.name, how.running === undefined ? last : 'ready');
  return { machine: machine.name, outcome, sshPort: done.sshPort, accel: done.record.state.accel ?? plan.accel, stepsRun: done.stepsRun };
}

function machineSpec(plan: MachinePlan, options: StartOptions, launch: Launch, context: ServiceContext): Omit<StartSpec, 'fromSavedState'> {
  const { machine, box } = plan;
  const privateNetwork = machine.privateIp === undefined ? undefined : { project: options.project.dir, mac: macFor(options.project.dir, machine.name, 1) };
  return {
    machine: machine.name,
    box,
    boot: launch.boot,
    accel: plan.accel,
    cpus: launch.cpus,
    memory: launch.memory,
    ports: machine.ports,
    folders: plan.folders,
    ...(privateNetwork === undefined ? {} : { privateNetwork }),
    ...(launch.generation === undefined ? {} : { generation: launch.generation }),
    onPortMoved: (from, to, spec) => context.reporter.notice(`machine "${machine.name}": host port ${from} is in use; guest port ${spec.guest}/${spec.protocol} is forwarded from ${spec.hostIp}:${to} instead`),
  };
}

async function alreadyRunning(plan: MachinePlan, current: RunningInstance, options: StartOptions, context: ServiceContext): Promise<UpResult> {
  const { machine } = plan;
  context.reporter.info(machine.name, `already running (${current.driver.location().pidLabel} ${current.pid}); SSH on 127.0.0.1:${current.state.sshPort}`);
  const drift = driftOf(machine, current.state);
  if (drift.length > 0) {
    context.reporter.notice(`machine "${machine.name}" runs with settings that differ from the Vmfile:\n${drift.map((line) => `  - ${line}`).join('\n')}\n  vmfile reload${options.project.machines.length > 1 ? ` ${machine.name}` : ''} applies them`);
  }
  let stepsRun = 0;
  if (options.provision !== 'all') await reportChangedSteps(options.project, machine, await readRecord(current.paths.provisioned), context.reporter);
  if (options.provision === 'all') {
    stepsRun = await withRunningMachine(options.project, machine.name, (running, session) =>
      provisionMachine({ project: options.project, machine, state: running.state, paths: running.paths, session }, { kind: 'all' }, context),
    { instance: current });
  }
  return { machine: machine.name, outcome: 'already running', sshPort: current.state.sshPort, accel: current.state.accel ?? 'tcg', stepsRun };
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

/**
 * Bringing a Vmfile's machines up (vmup, and the second half of reload and resume).
 *
 * Each machine is locked and inspected once, for the whole command. Everything that can
 * be refused is checked for every machine before anything is created: the machine
 * against the host that will run it (its driver's check: CPUs, memory, accelerator,
 * firmware, folders, the programs it needs), step files, folders, host ports (not for a
 * machine already running: the port is its own forward); then boxes and Vmfile.lock, one
 * machine at a time because they are shared. Then the machines start in parallel, and
 * one failing neither stops nor hides the others (instance/fanout.ts).
 */
import { mkdir } from 'node:fs/promises';
import type { HostPlan } from '../driver/driver.js';
import { firmwareProblem } from '../driver/host-check.js';
import { BusyError, ConfigError, UserError } from '../errors.js';
import { requireCommands } from '../exec.js';
import { planFolders, type PlannedFolder } from '../folders/plan.js';
import { checkFolders, checkProjectExposure } from '../folders/sync.js';
import type { ServiceContext } from '../instance/context.js';
import { forEachMachine } from '../instance/fanout.js';
import { inspect, type Instance } from '../instance/inspect.js';
import { selectMachines } from '../instance/select.js';
import { resolveForwards } from '../network/ports.js';
import { checkAnsibleGroups } from '../provision/ansible.js';
import { checkStepFiles } from '../provision/runner.js';
import { writeFileAtomic } from '../store/json.js';
import { writeEditorTsconfig } from '../project/editor-types.js';
import { machinePaths, machinesDir, projectGitignore } from '../store/layout.js';
import { withMachineLock } from '../store/lock.js';
import { ensureProjectStateDir } from '../store/project-state.js';
import { readLockFile } from '../store/lockfile.js';
import { recordLockedBoxes, recordProject } from '../store/projects.js';
import { machineBoot } from '../vmfile/boot.js';
import type { MachineConfig, Project } from '../vmfile/config.js';
import { lockedBoxRef } from '../vmfile/lock.js';
import { isLoopback } from '../vmfile/schema.js';
import { checkLock, ensureBox, snapshotMirrorFromEnv } from './box.js';
import type { MachinePlan, StartOptions, UpResult } from './plan.js';
import { refuseIfUnusable, startMachine } from './start.js';

export type { UpResult };

export interface UpOptions extends StartOptions {
  /** Default: the machines without autostart: false. */
  machines?: readonly string[];
}

export async function upMachines(options: UpOptions, context: ServiceContext): Promise<UpResult[]> {
  await requireCommands(['ssh-keygen'], 'vmup');
  const machines = pickMachines(options);
  for (const machine of machines) {
    for (const port of machine.ports.filter((spec) => spec.public === true && !isLoopback(spec.hostIp))) {
      context.reporter.notice(`machine "${machine.name}": host port ${port.hostIp}:${port.host}/${port.protocol} is public (reachable from other hosts), as the Vmfile says`);
    }
  }
  await ensureStateDir(options.project);
  await recordProject(context.home, { project: options.project.dir, vmfile: options.project.vmfilePath });
  return withMachineLocks(options.project.dir, machines, 'up', async (held) => {
    const free = machines.filter((machine) => !(held.get(machine.name) instanceof BusyError));
    const plans = await planMachines(options.project, free.map((machine) => ({ machine, instance: held.get(machine.name) as Instance })), context);
    return forEachMachine(
      machines,
      async (machine) => {
        const plan = plans.find((candidate) => candidate.machine.name === machine.name);
        if (plan === undefined) throw held.get(machine.name) as BusyError;
        return startMachine(plan, options, context);
      },
      { parallel: true, succeeded: 'up', retry: 'fix the failures above and run vmup again: machines that are up are left as they are' },
    );
  });
}

/**
 * Runs `fn` with every machine's lock taken (in name order, so two commands never wait
 * on each other) and each machine inspected under it; a machine another command holds
 * is given as its BusyError, and the others go on.
 */
async function withMachineLocks<T>(projectDir: string, machines: readonly MachineConfig[], operation: string, fn: (held: Map<string, Instance | BusyError>) => Promise<T>): Promise<T> {
  const held = new Map<string, Instance | BusyError>();
  const sorted = [...machines].sort((a, b) => a.name.localeCompare(b.name));
  const next = async (index: number): Promise<T> => {
    const machine = sorted[index];
    if (machine === undefined) return fn(held);
    const paths = machinePaths(projectDir, machine.name);
    await mkdir(paths.dir, { recursive: true, mode: 0o700 });
    let entered = false;
    try {
      return await withMachineLock(paths.lock, machine.name, operation, async () => {
        entered = true;
        held.set(machine.name, await inspect(projectDir, machine.name, machine.provider));
        return next(index + 1);
      });
    } catch (error) {
      if (entered || !(error instanceof BusyError)) throw error;
      held.set(machine.name, error);
      return next(index + 1);
    }
  };
  return next(0);
}

/** The machines named, or those with autostart when none is named. */
function pickMachines(options: UpOptions): MachineConfig[] {
  if (options.machines !== undefined && options.machines.length > 0) return selectMachines(options.project, options.machines);
  const machines = options.project.machines.filter((machine) => machine.autostart);
  if (machines.length === 0) {
    throw new UserError('every machine in this Vmfile has autostart: false', { hint: `name the ones to start, e.g. vmup ${options.project.machines[0]?.name ?? ''}` });
  }
  return machines;
}

export interface Checked {
  machine: MachineConfig;
  instance: Instance;
  folders: PlannedFolder[];
  host: HostPlan;
}

/**
 * Everything `vmup` refuses before it creates anything, for every machine at once: the
 * machine against its host (its driver's check), provisioning files, folders, taken
 * host ports (not for a machine already running: the port is its own forward), broken
 * machines. `vmfile validate` runs the same checks. All problems are reported together.
 */
export async function preflight(project: Project, machines: readonly { machine: MachineConfig; instance: Instance }[], env: NodeJS.ProcessEnv): Promise<Checked[]> {
  const checked: Checked[] = [];
  const problems: unknown[] = [];
  const collect = (error: unknown) => void problems.push(error);
  for (const { machine, instance } of machines) {
    const { driver } = instance;
    // A machine that cannot be used says so itself (refuseIfUnusable); its host is not asked again.
    const usable = instance.status !== 'unreachable' && instance.status !== 'broken';
    const facts = usable ? await driver.host().catch((error: unknown) => void collect(error)) : undefined;
    const folders = planFolders(machine.folders, { virtiofsd: facts?.liveFolders.includes('virtiofs') === true, projectDir: project.dir });
    let host: HostPlan = { accel: 'tcg' };
    const checks = [
      async () => refuseIfUnusable(instance),
      async () => {
        if (facts === undefined) return;
        const liveFolders = folders.flatMap((folder) => (folder.type === 'rsync' ? [] : [{ guest: folder.guest, type: folder.type }]));
        const result = await driver.check({ machine: machine.name, cpus: machine.cpus, memory: machine.memory, accel: machine.accel, firmware: machine.firmware, liveFolders }, env['VMFILE_ACCEL']);
        host = result.plan;
        problems.push(...result.problems);
      },
      () => checkStepFiles(machine.provision, project.dir, machine.name),
      async () => {
        for (const step of machine.provision) {
          if (step.kind === 'ansible') checkAnsibleGroups(step, project.machines.map((m) => m.name), machine.name);
        }
      },
      () => checkFolders(machine.name, folders),
      async () => checkProjectExposure(machine.name, machine.folders, folders, project),
      async () => {
        if (instance.status !== 'running') await resolveForwards(machine.name, machine.ports.filter((port) => !port.autoCorrect), () => {});
      },
    ];
    for (const check of checks) await check().catch(collect);
    checked.push({ machine, instance, folders, host });
  }
  throwAll(problems, 'nothing was created or booted');
  return checked;
}

/** One problem as it is; several as one error listing each, exit 78 when any is a configuration problem. */
function throwAll(problems: readonly unknown[], outcome: string): void {
  if (problems.length === 0) return;
  if (problems.length === 1) throw problems[0];
  const lines = problems.map((problem) => `  - ${problem instanceof Error ? problem.message : String(problem)}`).join('\n');
  const message = `${problems.length} problems; ${outcome}:\n${lines}`;
  const hint = { hint: 'fix each of them, then check again with: vmfile validate' };
  // Any configuration problem makes it one (exit 78); taken ports and the like alone are exit 1.
  throw problems.some((problem) => problem instanceof ConfigError) ? new ConfigError(message, hint) : new UserError(message, hint);
}

async function planMachines(project: Project, machines: readonly { machine: MachineConfig; instance: Instance }[], context: ServiceContext): Promise<MachinePlan[]> {
  const checked = await preflight(project, machines, context.env);
  if (checked.some((plan) => plan.folders.some((folder) => folder.type === 'rsync'))) await requireCommands(['rsync'], 'vmup (rsync folders)');
  if (checked.some(({ machine }) => machine.provision.some((step) => step.kind === 'ansible' && step.run !== 'never'))) await requireCommands(['ansible-playbook'], 'vmup (Ansible steps)');
  const lock = await readLockFile(project.dir);
  const plans: MachinePlan[] = [];
  for (const { machine, instance, folders, host } of checked) {
    // A created machine keeps the box version its disk was made from; a new one takes the
    // version Vmfile.lock pins when the Vmfile pins none (built from its recipe if missing).
    const state = instance.state;
    const ref = state === undefined ? lockedBoxRef(machine.box, lock.machines[machine.name]) : { name: state.box.name, version: state.box.version, fromLock: false };
    const snapshotMirror = snapshotMirrorFromEnv(context.env);
    const box = await ensureBox(context.home, ref, {
      reporter: context.reporter,
      machine: machine.name,
      fromLock: ref.fromLock,
      ...(ref.fromLock ? { lockEntry: lock.machines[machine.name] } : {}),
      ...(snapshotMirror === undefined || snapshotMirror === '' ? {} : { snapshotMirror }),
    });
    await checkLock(project, machine, box, { update: false });
    const boot = machineBoot(machine.name, machine.firmware, box.metadata);
    if (boot !== 'kernel') {
      // The box boots itself: its host must run its firmware (known only now that the box is).
      const problem = firmwareProblem(machine.name, boot, await instance.driver.host(), instance.driver.features);
      if (problem !== undefined) throw problem;
    }
    plans.push({ machine, instance, box, folders, accel: host.accel, accelNotice: host.notice, boot });
  }
  // What the lock pins stays protected from prune while the project cannot be read (store/projects.ts).
  const locked = Object.values((await readLockFile(project.dir)).machines).map((entry) => ({ name: entry.box, version: entry.version }));
  await recordLockedBoxes(context.home, { project: project.dir, vmfile: project.vmfilePath }, locked);
  return plans;
}

/** .vmfile/ is private and never committed; it also holds what editors need to check the Vmfile. */
async function ensureStateDir(project: Project): Promise<void> {
  await ensureProjectStateDir(project.dir);
  await writeEditorTsconfig(project.vmfilePath);
  await mkdir(machinesDir(project.dir), { recursive: true, mode: 0o700 });
  await writeFileAtomic(projectGitignore(project.dir), '*\n', { mode: 0o644, skipUnchanged: true });
}

/**
 * Bringing a Vmfile's machines up (vmup, and the second half of reload and resume).
 *
 * Everything that can be refused is checked for every machine before anything is
 * created: host capacity, step files, folders, host ports (not for a machine already
 * running: the port is its own forward), then boxes and Vmfile.lock, one machine at a
 * time because they are shared. Then the machines start in parallel, each under its
 * lock, and one failing neither stops nor hides the others (instance/fanout.ts).
 */
import { mkdir } from 'node:fs/promises';
import { QEMU_BINARY, probeHost, type HostInfo } from '../driver/qemu/driver.js';
import { ConfigError, UserError } from '../errors.js';
import { requireCommands } from '../exec.js';
import { planFolders, type PlannedFolder } from '../folders/plan.js';
import { checkFolders, checkProjectExposure, hostHasVirtiofsd } from '../folders/sync.js';
import type { ServiceContext } from '../instance/context.js';
import { forEachMachine } from '../instance/fanout.js';
import { inspect } from '../instance/inspect.js';
import { selectMachines } from '../instance/select.js';
import { resolveForwards } from '../network/ports.js';
import { checkAnsibleGroups } from '../provision/ansible.js';
import { checkStepFiles } from '../provision/runner.js';
import { writeFileAtomic } from '../store/json.js';
import { machinesDir, projectGitignore, projectStateDir } from '../store/layout.js';
import { withMachineLock } from '../store/lock.js';
import type { MachineState } from '../store/machine.js';
import { readLockFile } from '../store/lockfile.js';
import { recordProject } from '../store/projects.js';
import type { MachineConfig, Project } from '../vmfile/config.js';
import { lockedBoxRef } from '../vmfile/lock.js';
import { isLoopback } from '../vmfile/schema.js';
import { formatSize } from '../vmfile/size.js';
import { checkLock, ensureBox } from './box.js';
import { refuseIfUnusable, startMachine, type MachinePlan, type StartOptions, type UpResult } from './start.js';

export type { UpResult };

export interface UpOptions extends StartOptions {
  /** Default: the machines without autostart: false. */
  machines?: readonly string[];
}

export async function upMachines(options: UpOptions, context: ServiceContext): Promise<UpResult[]> {
  await requireCommands([QEMU_BINARY, 'qemu-img', 'ssh-keygen'], 'vmup');
  const host = await probeHost();
  const plans = await planMachines(options.project, pickMachines(options), host, context);
  for (const { machine } of plans) {
    for (const port of machine.ports.filter((spec) => spec.public === true && !isLoopback(spec.hostIp))) {
      context.reporter.notice(`machine "${machine.name}": host port ${port.hostIp}:${port.host}/${port.protocol} is public (reachable from other hosts), as the Vmfile says`);
    }
  }
  await ensureStateDir(options.project.dir);
  await recordProject(context.home, { project: options.project.dir, vmfile: options.project.vmfilePath });
  return forEachMachine(
    plans.map((plan) => ({ name: plan.machine.name, plan })),
    async ({ plan }) => {
      const { paths } = await inspect(options.project.dir, plan.machine.name);
      await mkdir(paths.dir, { recursive: true, mode: 0o700 });
      return withMachineLock(paths.lock, plan.machine.name, 'up', () => startMachine(plan, options, host, context));
    },
    { parallel: true, succeeded: 'up', retry: 'fix the failures above and run vmup again: machines that are up are left as they are' },
  );
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

/**
 * Everything `vmup` refuses before it creates anything, for every machine at once:
 * host capacity, provisioning files, folders, taken host ports (not for a machine
 * already running: the port is its own forward), broken machines. `vmfile validate`
 * runs the same checks. All problems are reported together.
 */
export async function preflight(project: Project, machines: readonly MachineConfig[], host: HostInfo): Promise<{ machine: MachineConfig; folders: PlannedFolder[]; state?: MachineState }[]> {
  const virtiofsd = await hostHasVirtiofsd();
  const checked = [];
  const problems: unknown[] = [];
  for (const machine of machines) {
    const current = await inspect(project.dir, machine.name);
    const folders = planFolders(machine.folders, { virtiofsd: virtiofsd && machine.provider.type === 'qemu' });
    const checks = [
      async () => {
        refuseIfUnusable(current);
      },
      async () => checkHostFits(machine, host),
      () => checkStepFiles(machine.provision, project.dir, machine.name),
      async () => {
        for (const step of machine.provision) {
          if (step.kind === 'ansible') checkAnsibleGroups(step, project.machines.map((m) => m.name), machine.name);
        }
      },
      () => checkFolders(machine.name, folders),
      async () => checkProjectExposure(machine.name, machine.folders, folders, project),
      async () => {
        if (current.status !== 'running') await resolveForwards(machine.name, machine.ports.filter((port) => !port.autoCorrect), () => {});
      },
    ];
    for (const check of checks) await check().catch((error: unknown) => problems.push(error));
    checked.push({ machine, folders, ...(current.state === undefined ? {} : { state: current.state }) });
  }
  if (problems.length === 1) throw problems[0];
  if (problems.length > 1) {
    const lines = problems.map((problem) => `  - ${problem instanceof Error ? problem.message : String(problem)}`).join('\n');
    const message = `${problems.length} problems; nothing was created or booted:\n${lines}`;
    const hint = { hint: 'fix each of them, then check again with: vmfile validate' };
    // Any configuration problem makes it one (exit 78); taken ports and the like alone are exit 1.
    throw problems.some((problem) => problem instanceof ConfigError) ? new ConfigError(message, hint) : new UserError(message, hint);
  }
  return checked;
}

async function planMachines(project: Project, machines: readonly MachineConfig[], host: HostInfo, context: ServiceContext): Promise<MachinePlan[]> {
  const checked = await preflight(project, machines, host);
  if (checked.some((plan) => plan.folders.some((folder) => folder.type === 'rsync'))) await requireCommands(['rsync'], 'vmup (rsync folders)');
  if (machines.some((machine) => machine.provision.some((step) => step.kind === 'ansible' && step.run !== 'never'))) await requireCommands(['ansible-playbook'], 'vmup (Ansible steps)');
  const lock = await readLockFile(project.dir);
  const plans: MachinePlan[] = [];
  for (const { machine, folders, state } of checked) {
    // A created machine keeps the box version its disk was made from; a new one takes the
    // version Vmfile.lock pins when the Vmfile pins none (built from its recipe if missing).
    const ref = state === undefined ? lockedBoxRef(machine.box, lock.machines[machine.name]) : { name: state.box.name, version: state.box.version, fromLock: false };
    const box = await ensureBox(context.home, ref, { reporter: context.reporter, machine: machine.name, fromLock: ref.fromLock });
    await checkLock(project, machine, box, { update: false });
    plans.push({ machine, box, folders });
  }
  return plans;
}

function checkHostFits(machine: MachineConfig, host: HostInfo): void {
  if (machine.cpus > host.cpus) {
    throw new ConfigError(`machine "${machine.name}": cpus is ${machine.cpus} but this host has ${host.cpus}`, { hint: `set cpus to ${host.cpus} or fewer in the Vmfile` });
  }
  if (machine.memory > host.memory) {
    throw new ConfigError(`machine "${machine.name}": memory is ${formatSize(machine.memory)} but this host has ${formatSize(host.memory)} in total`, { hint: 'lower memory in the Vmfile' });
  }
}

/** .vmfile/ is private and never committed. */
async function ensureStateDir(projectDir: string): Promise<void> {
  await mkdir(projectStateDir(projectDir), { recursive: true, mode: 0o700 });
  await mkdir(machinesDir(projectDir), { recursive: true, mode: 0o700 });
  await writeFileAtomic(projectGitignore(projectDir), '*\n', { mode: 0o644, skipUnchanged: true });
}

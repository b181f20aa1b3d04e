/**
 * vmup: create (if needed), boot, wait for SSH, provision.
 *
 * Creation is idempotent and ordered so that a fault at any point loses nothing: keys
 * and the overlay are made once and reused; machine.json is written last, so a
 * half-created machine is simply created again. A boot that never reaches SSH leaves
 * QEMU running for inspection (vmssh, serial.log) and says how to clean up.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { loadSeedTemplates, renderSeed, writeSeed } from '../cloudinit/seed.js';
import { ConfigError, GuestError, lastLines, UserError } from '../errors.js';
import { ensureBox } from './box.js';
import type { InstalledBox } from '../box/store.js';
import { qemuArgs, type BootSpec } from '../qemu/argv.js';
import { chooseAccel, probeHost, type HostInfo } from '../qemu/host.js';
import { createOverlay, imageInfo } from '../qemu/img.js';
import { launchQemu, QEMU_BINARY, runningPid } from '../qemu/process.js';
import { requireCommands } from '../exec.js';
import { QmpClient } from '../qmp/client.js';
import { hmpQuiet, withQmp } from '../qmp/session.js';
import { SUSPEND_SNAPSHOT } from '../state/layout.js';
import { checkStepFiles, runSteps, type ProvisionMode } from '../provision/runner.js';
import { readRecord } from '../provision/record.js';
import { SshSession, SshTimeout, waitForSsh } from '../ssh/client.js';
import { generateKeyPair, hostKeyAlias, knownHostsLine, readPublicKey } from '../ssh/keys.js';
import { machinePaths, machinesDir, projectStateDir, type MachinePaths } from '../state/layout.js';
import { withMachineLock } from '../state/lock.js';
import { writeJsonAtomic, type MachineState } from '../state/machine.js';
import { formatSize } from '../vmfile/size.js';
import { inPhase } from '../ui/reporter.js';
import type { MachineConfig, Project } from '../vmfile/config.js';
import { machineStatus, selectMachines, type ServiceContext } from './machine.js';
import { sshTargetFor, syncGuestClock } from './communicator.js';

export interface UpOptions {
  project: Project;
  machines?: readonly string[];
  /** 'boot' = Vagrant's default; 'all' = --provision; 'none' = --no-provision. */
  provision: 'boot' | 'all' | 'none';
}

export interface UpResult {
  machine: string;
  outcome: 'booted' | 'already running' | 'resumed';
  sshPort: number;
  accel: string;
  stepsRun: number;
}

export async function up(options: UpOptions, context: ServiceContext): Promise<UpResult[]> {
  await requireCommands([QEMU_BINARY, 'qemu-img', 'ssh-keygen'], 'vmup');
  const host = await probeHost();
  const results: UpResult[] = [];
  for (const machine of selectMachines(options.project, options.machines)) {
    checkHostFits(machine, host);
    await checkStepFiles(machine.provision, options.project.dir, machine.name);
    await ensureStateDir(options.project.dir);
    const paths = machinePaths(options.project.dir, machine.name);
    await mkdir(paths.dir, { recursive: true, mode: 0o700 });
    results.push(await withMachineLock(paths.lock, machine.name, 'up', () => upOne(options, machine, host, context)));
  }
  return results;
}

async function ensureStateDir(projectDir: string): Promise<void> {
  await mkdir(projectStateDir(projectDir), { recursive: true, mode: 0o700 });
  await mkdir(machinesDir(projectDir), { recursive: true, mode: 0o700 });
  await writeFile(`${projectStateDir(projectDir)}/.gitignore`, '*\n');
}

async function upOne(options: UpOptions, machine: MachineConfig, host: HostInfo, context: ServiceContext): Promise<UpResult> {
  const { reporter } = context;
  const current = await machineStatus(options.project.dir, machine.name);
  const paths = current.paths;
  if (current.status === 'running' && current.state?.sshPort !== undefined) {
    reporter.info(machine.name, `already running (pid ${current.pid}); SSH on 127.0.0.1:${current.state.sshPort}`);
    let stepsRun = 0;
    if (options.provision === 'all') {
      stepsRun = await provision(options, machine, current.state, paths, { kind: 'all' }, context);
    }
    return { machine: machine.name, outcome: 'already running', sshPort: current.state.sshPort, accel: current.state.accel ?? 'tcg', stepsRun };
  }

  const box = await ensureBox(context.home, machine.box, { reporter, machine: machine.name, ...(context.signal === undefined ? {} : { signal: context.signal }) });
  if (current.status === 'suspended' && current.state !== undefined) {
    return resume(options, machine, box, current.state, paths, host, context);
  }
  let state = current.state;
  if (current.status === 'not created' || state === undefined) {
    state = await inPhase(reporter, machine.name, `Creating machine from box ${box.metadata.name} ${box.metadata.version}`, () => create(machine, box, paths));
  }

  const accel = chooseAccel(machine.accel, context.env['VMFILE_ACCEL'], host);
  if (accel.notice !== undefined) reporter.notice(accel.notice);

  const seedTemplates = await loadSeedTemplates();
  await writeSeed(
    paths.seedDir,
    renderSeed(seedTemplates, {
      machine: machine.name,
      instanceId: state.instanceId,
      hostname: machine.hostname,
      user: state.user,
      authorizedKey: await readPublicKey(paths.publicKey),
      hostPrivateKey: await readFile(paths.hostPrivateKey, 'utf8'),
      hostPublicKey: await readPublicKey(paths.hostPublicKey),
    }),
  );

  const launch = { cpus: machine.cpus, memory: machine.memory };
  const { pid, sshPort } = await inPhase(reporter, machine.name, `Starting QEMU (${accel.accel}, ${machine.cpus} CPUs, ${formatSize(machine.memory)})`, () =>
    boot(machine, box, paths, accel.accel, launch),
  );
  state = { ...state, sshPort, accel: accel.accel, bootedAt: new Date().toISOString(), launch };
  await writeJsonAtomic(paths.state, state);

  const session = await inPhase(reporter, machine.name, `Waiting for SSH on 127.0.0.1:${sshPort}`, (phase) =>
    waitReady(machine, state, paths, pid, sshPort, phase.progress.bind(phase), context.signal),
  );
  let stepsRun = 0;
  try {
    if (options.provision !== 'none') {
      stepsRun = await runProvision(options.project, machine, state, paths, session, options.provision === 'all' ? { kind: 'all' } : { kind: 'boot' }, context);
    }
  } finally {
    session.close();
  }
  reporter.info(machine.name, `ready: vmssh${options.project.machines.length > 1 ? ` ${machine.name}` : ''} opens a shell`);
  return { machine: machine.name, outcome: 'booted', sshPort, accel: accel.accel, stepsRun };
}

/**
 * Continues a suspended machine: QEMU starts from the saved memory (-loadvm) with the
 * CPUs and memory it was suspended with, so the guest goes on where it stopped. The
 * saved state is deleted only once SSH answers again.
 */
async function resume(
  options: UpOptions,
  machine: MachineConfig,
  box: InstalledBox,
  suspended: MachineState,
  paths: MachinePaths,
  host: HostInfo,
  context: ServiceContext,
): Promise<UpResult> {
  const { reporter } = context;
  const launch = suspended.launch ?? { cpus: machine.cpus, memory: machine.memory };
  if (launch.cpus !== machine.cpus || launch.memory !== machine.memory) {
    reporter.notice(`machine "${machine.name}" resumes with ${launch.cpus} CPUs and ${formatSize(launch.memory)} as suspended; run vmfile reload to apply the Vmfile's values`);
  }
  const accel = suspended.accel ?? chooseAccel(machine.accel, context.env['VMFILE_ACCEL'], host).accel;
  const { pid, sshPort } = await inPhase(reporter, machine.name, 'Resuming from saved memory', () => boot(machine, box, paths, accel, launch, SUSPEND_SNAPSHOT));
  let state: MachineState = { ...suspended, sshPort, accel, launch };
  await writeJsonAtomic(paths.state, state);
  const session = await inPhase(reporter, machine.name, `Waiting for SSH on 127.0.0.1:${sshPort}`, (phase) =>
    waitReady(machine, state, paths, pid, sshPort, phase.progress.bind(phase), context.signal),
  );
  let stepsRun = 0;
  try {
    await syncGuestClock(session);
    await withQmp(paths.qmpSocket, (qmp) => hmpQuiet(qmp, `delvm ${SUSPEND_SNAPSHOT}`, `machine "${machine.name}": drop the saved state`));
    const { suspendedAt: _suspendedAt, ...running } = state;
    state = running;
    await writeJsonAtomic(paths.state, state);
    if (options.provision === 'all') stepsRun = await runProvision(options.project, machine, state, paths, session, { kind: 'all' }, context);
  } finally {
    session.close();
  }
  reporter.info(machine.name, 'resumed');
  return { machine: machine.name, outcome: 'resumed', sshPort, accel, stepsRun };
}

function checkHostFits(machine: MachineConfig, host: HostInfo): void {
  if (machine.cpus > host.cpus) {
    throw new ConfigError(`machine "${machine.name}": cpus is ${machine.cpus} but this host has ${host.cpus}`, {
      hint: `set cpus to ${host.cpus} or fewer in the Vmfile`,
    });
  }
  if (machine.memory > host.memory) {
    throw new ConfigError(`machine "${machine.name}": memory is ${formatSize(machine.memory)} but this host has ${formatSize(host.memory)} in total`, {
      hint: 'lower memory in the Vmfile',
    });
  }
}

async function create(machine: MachineConfig, box: InstalledBox, paths: MachinePaths): Promise<MachineState> {
  await mkdir(paths.dir, { recursive: true, mode: 0o700 });
  if (machine.disk < box.metadata.disk.virtualSize) {
    throw new ConfigError(`machine "${machine.name}": disk ${formatSize(machine.disk)} is smaller than box ${box.metadata.name}'s disk (${formatSize(box.metadata.disk.virtualSize)})`, {
      hint: `set disk to at least "${formatSize(box.metadata.disk.virtualSize)}"`,
    });
  }
  await generateKeyPair(paths.privateKey, `vmfile machine ${machine.name}`);
  await generateKeyPair(paths.hostPrivateKey, `vmfile host key ${machine.name}`);
  await writeFile(paths.knownHosts, knownHostsLine(hostKeyAlias(machine.name), await readPublicKey(paths.hostPublicKey)), { mode: 0o600 });
  await createOverlay(box.paths.disk, paths.overlay, machine.disk);
  const state: MachineState = {
    name: machine.name,
    instanceId: `vmfile-${randomUUID()}`,
    createdAt: new Date().toISOString(),
    box: { name: box.metadata.name, version: box.metadata.version, sha256: box.metadata.disk.sha256 },
    user: box.metadata.user,
  };
  await writeJsonAtomic(paths.state, state);
  return state;
}

function bootSpec(box: InstalledBox): BootSpec {
  const boot = box.metadata.boot;
  if (boot.type === 'kernel') {
    return { type: 'kernel', kernel: box.paths.kernel, ...(boot.initrd === undefined ? {} : { initrd: box.paths.initrd }), cmdline: boot.cmdline };
  }
  if (boot.firmware === 'uefi') throw new UserError(`box ${box.metadata.name}: UEFI boxes are not supported yet`, { hint: 'use a BIOS or direct-kernel box' });
  return { type: 'firmware', firmware: 'bios' };
}

async function boot(
  machine: MachineConfig,
  box: InstalledBox,
  paths: MachinePaths,
  accel: 'kvm' | 'tcg',
  launch: { cpus: number; memory: number },
  loadvm?: string,
): Promise<{ pid: number; sshPort: number }> {
  await imageInfo(paths.overlay).catch((error: unknown) => {
    throw new UserError(`machine "${machine.name}": its disk ${paths.overlay} cannot be read`, {
      hint: `check that box ${box.metadata.name} ${box.metadata.version} is still installed (vmfile box list)`,
      cause: error,
    });
  });
  await writeFile(paths.serialLog, '', { mode: 0o600 });
  // The free port is found by binding and releasing it; another program can take it in
  // between, so a failed forward is retried on a new port.
  for (let attempt = 1; ; attempt++) {
    const sshPort = await freePort();
    const args = qemuArgs({
      name: machine.name,
      accel,
      cpus: launch.cpus,
      memory: launch.memory,
      boot: bootSpec(box),
      overlay: paths.overlay,
      seedDir: paths.seedDir,
      forwards: [{ protocol: 'tcp', hostIp: '127.0.0.1', hostPort: sshPort, guestPort: 22 }],
      qmpSocket: paths.qmpSocket,
      serialLog: paths.serialLog,
      pidFile: paths.pidFile,
      ...(loadvm === undefined ? {} : { loadvm }),
    });
    try {
      const pid = await launchQemu(args, paths.pidFile);
      const qmp = await QmpClient.connect(paths.qmpSocket);
      qmp.close();
      return { pid, sshPort };
    } catch (error) {
      const text = error instanceof Error ? `${error.message} ${'stderr' in error ? String(error.stderr) : ''}` : '';
      if (attempt < 3 && /host forwarding rule|Address already in use/i.test(text)) continue;
      throw error;
    }
  }
}

async function waitReady(
  machine: MachineConfig,
  state: MachineState,
  paths: MachinePaths,
  pid: number,
  sshPort: number,
  progress: (text: string) => void,
  signal: AbortSignal | undefined,
): Promise<SshSession> {
  const target = await sshTargetFor(paths, state, sshPort);
  try {
    return await waitForSsh(target, {
      deadline: Date.now() + machine.bootTimeout * 1000,
      ...(signal === undefined ? {} : { signal }),
      onAttempt: (elapsed) => progress(`still waiting for SSH (${Math.round(elapsed / 1000)} s of ${machine.bootTimeout} s)`),
      giveUp: async () =>
        (await runningPid(paths.pidFile, paths.overlay)) === undefined
          ? `machine "${machine.name}": QEMU (pid ${pid}) exited while booting. Last console lines:\n${await serialTail(paths)}`
          : undefined,
    });
  } catch (error) {
    if (error instanceof SshTimeout) {
      throw new GuestError(`machine "${machine.name}": SSH not ready after ${machine.bootTimeout} s (${error.lastError}). Last console lines:\n${await serialTail(paths)}`, {
        hint: `the machine is left running for inspection (console log: ${paths.serialLog}); vmfile halt --force stops it, or raise bootTimeout in the Vmfile`,
      });
    }
    throw error;
  }
}

async function serialTail(paths: MachinePaths): Promise<string> {
  const text = await readFile(paths.serialLog, 'utf8').catch(() => '');
  // eslint-disable-next-line no-control-regex
  const clean = text.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '');
  const tail = lastLines(clean, 15);
  return tail === '' ? '  (the console printed nothing)' : tail.split('\n').map((line) => `  | ${line}`).join('\n');
}

async function provision(options: UpOptions, machine: MachineConfig, state: MachineState, paths: MachinePaths, mode: ProvisionMode, context: ServiceContext): Promise<number> {
  if (state.sshPort === undefined) return 0;
  const target = await sshTargetFor(paths, state, state.sshPort);
  const session = await SshSession.connect(target);
  try {
    return await runProvision(options.project, machine, state, paths, session, mode, context);
  } finally {
    session.close();
  }
}

export async function runProvision(
  project: Project,
  machine: MachineConfig,
  state: MachineState,
  paths: MachinePaths,
  session: SshSession,
  mode: ProvisionMode,
  context: ServiceContext,
): Promise<number> {
  const record = await readRecord(paths.provisioned);
  return runSteps(machine.provision, mode, {
    machine: machine.name,
    user: state.user,
    projectDir: project.dir,
    session,
    reporter: context.reporter,
    recordPath: paths.provisioned,
    record,
    ...(context.signal === undefined ? {} : { signal: context.signal }),
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

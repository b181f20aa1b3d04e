/**
 * vmup: create (if needed), boot, wait for SSH, provision.
 *
 * Creation is idempotent and ordered so that a fault at any point loses nothing: keys
 * and the overlay are made once and reused; machine.json is written last, so a
 * half-created machine is simply created again. A boot that never reaches SSH leaves
 * QEMU running for inspection (vmssh, serial.log) and says how to clean up.
 */
import { randomUUID } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { freePort, resolveForwards } from '../network/ports.js';
import { macFor } from '../network/address.js';
import { configurePrivateNetwork } from '../network/guest.js';
import { ensureHub } from '../network/hub.js';
import { loadSeedTemplates, renderSeed, writeSeed } from '../cloudinit/seed.js';
import { ConfigError, GuestError, lastLines, UserError, VmfileError } from '../errors.js';
import { ensureBox } from './box.js';
import type { InstalledBox } from '../box/store.js';
import { qemuArgs, type BootSpec, type PortForward } from '../qemu/argv.js';
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
import { machinePaths, machinesDir, projectStateDir, socketPath, type MachinePaths } from '../state/layout.js';
import { withMachineLock } from '../state/lock.js';
import { readMachineState, writeJsonAtomic, type MachineState } from '../state/machine.js';
import { formatSize } from '../vmfile/size.js';
import { inPhase, type Reporter } from '../ui/reporter.js';
import type { MachineConfig, Project } from '../vmfile/config.js';
import { checkLock, lockedBoxRef, readLockFile } from '../vmfile/lockfile.js';
import { machineStatus, selectMachines, type ServiceContext } from './machine.js';
import { openSshOptions, sshTargetFor, syncGuestClock } from './communicator.js';
import { planFolders, type PlannedFolder } from '../folders/plan.js';
import { checkFolders, hostHasVirtiofsd, mountLiveFolders, rsyncFolders, startVirtiofsd } from '../folders/sync.js';

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
  const machines = pickMachines(options);
  const virtiofsd = await hostHasVirtiofsd();
  const folders = new Map<string, PlannedFolder[]>();
  for (const machine of machines) {
    checkHostFits(machine, host);
    await checkStepFiles(machine.provision, options.project.dir, machine.name);
    const planned = planFolders(machine.folders, { virtiofsd });
    await checkFolders(machine.name, planned);
    folders.set(machine.name, planned);
    // A taken port is refused before anything is created (boot checks again, and corrects).
    await resolveForwards(machine.name, machine.ports.filter((port) => !port.autoCorrect), () => {});
  }
  if (folders.size > 0 && [...folders.values()].some((list) => list.some((f) => f.type === 'rsync'))) await requireCommands(['rsync'], 'vmup (rsync folders)');
  // Boxes and Vmfile.lock are shared by the machines: settle them one machine at a time.
  const boxes = new Map<string, InstalledBox>();
  const lock = await readLockFile(options.project.dir);
  for (const machine of machines) {
    // A created machine keeps the box version its disk was made from; a new one takes the
    // version Vmfile.lock pins when the Vmfile pins none (built from its recipe if missing).
    const existing = await readMachineState(machinePaths(options.project.dir, machine.name).state);
    const ref = existing === undefined ? lockedBoxRef(machine.box, lock.machines[machine.name]) : { name: existing.box.name, version: existing.box.version, fromLock: false };
    const box = await ensureBox(context.home, ref, {
      reporter: context.reporter,
      machine: machine.name,
      fromLock: ref.fromLock,
      ...(context.signal === undefined ? {} : { signal: context.signal }),
    });
    await checkLock(options.project, machine, box, { update: false });
    boxes.set(machine.name, box);
  }
  await ensureStateDir(options.project.dir);
  if (machines.some((machine) => machine.privateIp !== undefined)) await startNetwork(options.project.dir);
  // Machines boot in parallel; one failing neither stops nor hides the others.
  const settled = await Promise.allSettled(
    machines.map(async (machine) => {
      const paths = machinePaths(options.project.dir, machine.name);
      await mkdir(paths.dir, { recursive: true, mode: 0o700 });
      const box = boxes.get(machine.name);
      if (box === undefined) throw new Error(`no box resolved for machine ${machine.name}`);
      return withMachineLock(paths.lock, machine.name, 'up', () => upOne(options, machine, box, folders.get(machine.name) ?? [], host, context));
    }),
  );
  const failures = settled.flatMap((result) => (result.status === 'rejected' ? [result.reason as unknown] : []));
  if (failures.length === 0) return settled.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  if (machines.length === 1) throw failures[0];
  const ok = settled.flatMap((result) => (result.status === 'fulfilled' ? [result.value.machine] : []));
  throw new GuestError(
    `${failures.length} of ${machines.length} machines failed${ok.length > 0 ? ` (${ok.join(', ')} ${ok.length > 1 ? 'are' : 'is'} up)` : ''}:\n${failures
      .map((failure) => `  - ${failure instanceof Error ? failure.message : String(failure)}`)
      .join('\n')}`,
    { hint: 'fix the failures above and run vmup again: machines that are up are left as they are', exitCode: firstExitCode(failures) },
  );
}

/** The switch every machine's private NIC connects to; QEMU will not start without it. */
async function startNetwork(projectDir: string): Promise<void> {
  const entry = join(dirname(fileURLToPath(import.meta.url)), '..', 'network', 'hub-main.js');
  await ensureHub(networkSocket(projectDir), entry);
}

function networkSocket(projectDir: string): string {
  return socketPath(projectStateDir(projectDir), 'network.sock');
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

function firstExitCode(failures: readonly unknown[]): number {
  for (const failure of failures) if (failure instanceof VmfileError) return failure.exitCode;
  return 70;
}

async function ensureStateDir(projectDir: string): Promise<void> {
  await mkdir(projectStateDir(projectDir), { recursive: true, mode: 0o700 });
  await mkdir(machinesDir(projectDir), { recursive: true, mode: 0o700 });
  await writeFile(`${projectStateDir(projectDir)}/.gitignore`, '*\n');
}

async function upOne(
  options: UpOptions,
  machine: MachineConfig,
  box: InstalledBox,
  folders: PlannedFolder[],
  host: HostInfo,
  context: ServiceContext,
): Promise<UpResult> {
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

  if (current.status === 'suspended' && current.state !== undefined) {
    return resume(options, machine, box, current.state, paths, folders, host, context);
  }
  let state = current.state;
  if (current.status === 'not created' || state === undefined) {
    state = await inPhase(reporter, machine.name, `Creating machine from box ${box.metadata.name} ${box.metadata.version}`, () => create(machine, box, paths));
  }

  if (current.status === 'halted' && state.initialized !== true) {
    // Its first boot never reached SSH (QEMU killed, timeout): cloud-init's first-boot
    // work may be half on disk (ext4 loses unflushed new files, e.g. the SSH host key).
    // A new instance id makes cloud-init do it all again; the disk's data is kept.
    state = { ...state, instanceId: `vmfile-${randomUUID()}` };
    await writeJsonAtomic(paths.state, state);
    reporter.info(machine.name, 'its first boot did not finish; cloud-init will set it up again');
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
  const { pid, sshPort, forwards } = await inPhase(reporter, machine.name, `Starting QEMU (${accel.accel}, ${machine.cpus} CPUs, ${formatSize(machine.memory)})`, () =>
    boot(machine, box, paths, accel.accel, launch, undefined, folders, reporter),
  );
  state = { ...state, sshPort, forwards, accel: accel.accel, bootedAt: new Date().toISOString(), launch, folders };
  await writeJsonAtomic(paths.state, state);

  const booted = state;
  const session = await inPhase(reporter, machine.name, `Waiting for SSH on 127.0.0.1:${sshPort}`, (phase) =>
    waitReady(machine, booted, paths, pid, sshPort, phase.progress.bind(phase), context.signal),
  );
  let stepsRun = 0;
  try {
    if (state.initialized !== true) {
      // Flush what cloud-init wrote on first boot, so a hard power-off cannot lose it.
      await session.exec('sync');
      state = { ...state, initialized: true };
      await writeJsonAtomic(paths.state, state);
    }
    await enableNetwork(session, options.project, machine, reporter);
    await enableFolders(session, paths, state, machine.name, folders, reporter);
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
  folders: PlannedFolder[],
  host: HostInfo,
  context: ServiceContext,
): Promise<UpResult> {
  const { reporter } = context;
  const launch = suspended.launch ?? { cpus: machine.cpus, memory: machine.memory };
  if (launch.cpus !== machine.cpus || launch.memory !== machine.memory) {
    reporter.notice(`machine "${machine.name}" resumes with ${launch.cpus} CPUs and ${formatSize(launch.memory)} as suspended; run vmfile reload to apply the Vmfile's values`);
  }
  const accel = suspended.accel ?? chooseAccel(machine.accel, context.env['VMFILE_ACCEL'], host).accel;
  const { pid, sshPort, forwards } = await inPhase(reporter, machine.name, 'Resuming from saved memory', () =>
    boot(machine, box, paths, accel, launch, SUSPEND_SNAPSHOT, suspended.folders ?? [], reporter),
  );
  let state: MachineState = { ...suspended, sshPort, forwards, accel, launch };
  await writeJsonAtomic(paths.state, state);
  const session = await inPhase(reporter, machine.name, `Waiting for SSH on 127.0.0.1:${sshPort}`, (phase) =>
    waitReady(machine, state, paths, pid, sshPort, phase.progress.bind(phase), context.signal),
  );
  let stepsRun = 0;
  try {
    await syncGuestClock(session);
    await enableNetwork(session, options.project, machine, reporter);
    await enableFolders(session, paths, state, machine.name, (suspended.folders ?? []).filter((f) => f.type === 'rsync'), reporter);
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

/** The project directory a machine directory belongs to (.../.vmfile/machines/NAME). */
function projectDirOf(paths: MachinePaths): string {
  return dirname(dirname(dirname(paths.dir)));
}

/** Address on the private NIC and every peer's name in /etc/hosts. */
async function enableNetwork(session: SshSession, project: Project, machine: MachineConfig, reporter: Reporter): Promise<void> {
  if (machine.privateIp === undefined) return;
  const ip = machine.privateIp;
  const peers = project.machines.flatMap((peer) => (peer.privateIp === undefined ? [] : [{ name: peer.name, hostname: peer.hostname, ip: peer.privateIp }]));
  await inPhase(reporter, machine.name, `Joining the private network as ${ip}`, () => configurePrivateNetwork(session, machine.name, macFor(project.dir, machine.name, 1), ip, peers));
}

/** Mounts live folders and copies rsync ones, as one phase. */
async function enableFolders(session: SshSession, paths: MachinePaths, state: MachineState, machine: string, folders: readonly PlannedFolder[], reporter: Reporter): Promise<void> {
  if (folders.length === 0 || state.sshPort === undefined) return;
  const port = state.sshPort;
  await inPhase(reporter, machine, `Syncing folders (${folders.map((f) => `${f.guest} ${f.type}`).join(', ')})`, async () => {
    await mountLiveFolders(session, machine, folders);
    await rsyncFolders(session, paths, openSshOptions(paths, state, port), machine, state.user, folders);
  });
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
  loadvm: string | undefined,
  folders: readonly PlannedFolder[],
  reporter: Reporter,
): Promise<{ pid: number; sshPort: number; forwards: PortForward[] }> {
  await imageInfo(paths.overlay).catch((error: unknown) => {
    throw new UserError(`machine "${machine.name}": its disk ${paths.overlay} cannot be read`, {
      hint: `check that box ${box.metadata.name} ${box.metadata.version} is still installed (vmfile box list)`,
      cause: error,
    });
  });
  await writeFile(paths.serialLog, '', { mode: 0o600 });
  const forwards = await resolveForwards(machine.name, machine.ports, (from, to, spec) =>
    reporter.notice(`machine "${machine.name}": host port ${from} is in use; guest port ${spec.guest}/${spec.protocol} is forwarded from ${spec.hostIp}:${to} instead`),
  );
  // The free port is found by binding and releasing it; another program can take it in
  // between, so a failed forward is retried on a new port.
  const virtiofs = await startVirtiofsd(paths, folders);
  // QEMU starts even when the switch is missing, with a dead link; make sure it runs now.
  if (machine.privateIp !== undefined) await startNetwork(projectDirOf(paths));
  const ninep = folders.filter((folder) => folder.type === '9p').map((folder) => ({ tag: folder.tag, path: folder.host, readonly: folder.readonly }));
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
      forwards: [{ protocol: 'tcp', hostIp: '127.0.0.1', hostPort: sshPort, guestPort: 22 }, ...forwards],
      qmpSocket: paths.qmpSocket,
      serialLog: paths.serialLog,
      pidFile: paths.pidFile,
      ...(loadvm === undefined ? {} : { loadvm }),
      virtiofs,
      ninep,
      ...(machine.privateIp === undefined ? {} : { privateNetwork: { socket: networkSocket(projectDirOf(paths)), mac: macFor(projectDirOf(paths), machine.name, 1) } }),
    });
    try {
      const pid = await launchQemu(args, paths.pidFile);
      const qmp = await QmpClient.connect(paths.qmpSocket);
      qmp.close();
      return { pid, sshPort, forwards };
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


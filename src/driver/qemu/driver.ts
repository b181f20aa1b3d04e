/**
 * The QEMU driver: vmfile runs qemu-system itself, detached, and talks to it over QMP.
 *
 * It owns the QEMU command line (qemu/argv.ts), the process (qemu/process.ts: a pid
 * counts only while /proc says it is QEMU on this machine's overlay), qemu-img, QMP,
 * and stopping. Running vs stopped is decided here for snapshots: HMP savevm/loadvm/delvm
 * (disk and memory) on a running machine, qemu-img on a stopped one (disk only). qcow2
 * updates its snapshot table only after a snapshot's data is written, so a save that
 * fails or is killed midway leaves the earlier snapshots as they were.
 */
import { rename, rm, statfs, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { InstalledBox } from '../../box/store.js';
import { UserError } from '../../errors.js';
import { startVirtiofsd } from '../../folders/sync.js';
import { freePort, resolveForwards } from '../../network/ports.js';
import { startNetwork } from '../../network/project-hub.js';
import { qemuArgs } from '../../qemu/argv.js';
import { bootSpec } from './boot.js';
import { loadStateFromFile, saveStateToFile } from './migration.js';
import { findSnapshot, snapshotStopped, userSnapshots } from './snapshots.js';
import { replaceBootId } from './boot-id.js';
import { setClockThroughAgent } from './agent.js';
import { convertImage, createOverlay, imageInfo, listSnapshots } from '../../qemu/img.js';
import { killProcess, launchQemu, waitForExit } from '../../qemu/process.js';
import { qemuPid } from './pid.js';
import { QmpClient } from '../../qmp/client.js';
import { hmpQuiet, withQmp } from '../../qmp/session.js';
import { closeSshMaster } from '../../ssh/master.js';
import { SUSPEND_SNAPSHOT, socketPath, type MachinePaths } from '../../store/layout.js';
import { readMachineState, withoutRuntime, writeMachineState, type BootIdLocation } from '../../store/machine.js';
import { ensureSocketDir } from '../../store/socket-dir.js';
import { formatSize } from '../../vmfile/size.js';
import { snapshotTaken, snapshotWithoutMemory, type Driver, type Snapshot, type StartSpec, type Started, type StopOptions } from '../driver.js';

export { chooseAccel, probeHost, qemuVersion, type HostInfo } from '../../qemu/host.js';
export { QEMU_BINARY } from '../../qemu/process.js';

/**
 * The file a machine's disk is made over, from the disk's own header: the backing file is
 * named, never opened (a disk under .vmfile/ is not trusted to name a safe one).
 */
export async function diskBase(overlay: string): Promise<string | undefined> {
  return (await imageInfo(overlay, 'qcow2')).fullBackingFile;
}

/**
 * How long the guest agent may take to set the clock before SSH does it instead: it
 * answers in tens of milliseconds when it runs, and not at all when it does not.
 */
const AGENT_TIMEOUT_MS = 1_500;

/** Room the overlay needs beyond the memory itself (device state, qcow2 metadata). */
const LOW_SPACE_MARGIN = 64 * 1024 * 1024;

export function qemuDriver(name: string, paths: MachinePaths): Driver {
  return new QemuDriver(name, paths);
}

class QemuDriver implements Driver {
  constructor(
    private readonly name: string,
    private readonly paths: MachinePaths,
  ) {}

  pid(): Promise<number | undefined> {
    return qemuPid(this.paths);
  }

  async paused(): Promise<boolean> {
    try {
      const result = await withQmp(this.paths.qmpSocket, (qmp) => qmp.execute<{ running?: boolean }>('query-status', {}, { timeoutMs: 1000 }), { timeoutMs: 1000 });
      return result.running === false;
    } catch {
      return false;
    }
  }

  async continueAfterIoError(): Promise<boolean> {
    return withQmp(this.paths.qmpSocket, async (qmp) => {
      // QEMU stops a guest whose disk write failed with ENOSPC (werror=enospc) in this state.
      const { status } = await qmp.execute<{ status?: string }>('query-status', {}, { timeoutMs: 5000 });
      if (status !== 'io-error') return false;
      await qmp.execute('cont', {}, { timeoutMs: 5000 });
      return true;
    });
  }

  async create(box: InstalledBox, diskBytes: number, base?: string): Promise<void> {
    await createOverlay(base ?? box.paths.disk, this.paths.overlay, diskBytes);
  }

  async checkDisk(box: InstalledBox): Promise<void> {
    await imageInfo(this.paths.overlay, 'qcow2').catch((error: unknown) => {
      throw new UserError(`machine "${this.name}": its disk ${this.paths.overlay} cannot be read`, {
        hint: `check that box ${box.metadata.name} ${box.metadata.version} is still installed (vmfile box list)`,
        cause: error,
      });
    });
  }

  async start(spec: StartSpec): Promise<Started> {
    const running = await this.pid();
    if (running !== undefined) throw new UserError(`machine "${this.name}" is already running (pid ${running})`);
    await this.checkDisk(spec.box);
    await writeFile(this.paths.serialLog, '', { mode: 0o600 });
    await ensureSocketDir(this.paths.qmpSocket);
    await ensureSocketDir(this.paths.sshControl);
    const forwards = await resolveForwards(spec.machine, spec.ports, spec.onPortMoved ?? (() => {}));
    const virtiofs = await startVirtiofsd(this.paths, spec.folders);
    const ninep = spec.folders.filter((folder) => folder.type === '9p').map((folder) => ({ tag: folder.tag, path: folder.host, readonly: folder.readonly }));
    // The free SSH port is found by binding and releasing it; another program can take
    // it in between, so a failed forward is retried on a new port.
    const privateNetwork = spec.privateNetwork === undefined ? undefined : { socket: await this.switchFor(spec.privateNetwork), mac: spec.privateNetwork.mac };
    await ensureSocketDir(this.paths.agentSocket);
    const bootId = spec.fromWarmState === undefined ? undefined : spec.bootId;
    if (bootId !== undefined) {
      await ensureSocketDir(this.paths.gdbSocket);
      await rm(this.paths.gdbSocket, { force: true });
    }
    for (let attempt = 1; ; attempt++) {
      const sshPort = await freePort();
      const args = qemuArgs({
        name: spec.machine,
        accel: spec.accel,
        cpus: spec.cpus,
        memory: spec.memory,
        boot: await bootSpec(this.name, this.paths, spec.box, spec.boot),
        overlay: this.paths.overlay,
        seedDir: this.paths.seedDir,
        forwards: [{ protocol: 'tcp', hostIp: '127.0.0.1', hostPort: sshPort, guestPort: 22 }, ...forwards],
        qmpSocket: this.paths.qmpSocket,
        agentSocket: this.paths.agentSocket,
        serialLog: this.paths.serialLog,
        pidFile: this.paths.pidFile,
        ...(spec.fromSavedState ? { loadvm: SUSPEND_SNAPSHOT } : {}),
        ...(spec.fromWarmState === undefined ? {} : { incoming: true }),
        ...(spec.generation === undefined ? {} : { generation: spec.generation }),
        ...(bootId === undefined ? {} : { gdbSocket: this.paths.gdbSocket }),
        virtiofs,
        ninep,
        ...(privateNetwork === undefined ? {} : { privateNetwork }),
      });
      try {
        const pid = await launchQemu(args, this.paths.pidFile);
        const qmp = await QmpClient.connect(this.paths.qmpSocket);
        try {
          if (spec.fromWarmState !== undefined) await this.loadWarmState(pid, qmp, spec.fromWarmState, bootId);
        } finally {
          qmp.close();
        }
        return { pid, sshPort, forwards };
      } catch (error) {
        const text = error instanceof Error ? `${error.message} ${'stderr' in error ? String(error.stderr) : ''}` : '';
        if (attempt < 3 && /host forwarding rule|Address already in use/i.test(text)) continue;
        throw error;
      }
    }
  }

  /** vmfile's switch for the project's network, or (no project) a socket no switch will ever answer on. */
  private async switchFor(network: NonNullable<StartSpec['privateNetwork']>): Promise<string> {
    return network.project === undefined ? socketPath(this.paths.dir, 'no-network.sock') : startNetwork(network.project);
  }

  /** A QEMU that cannot load the state is stopped: it would wait for a stream forever. */
  private async loadWarmState(pid: number, qmp: QmpClient, file: string, bootId: BootIdLocation | undefined): Promise<void> {
    try {
      await loadStateFromFile(qmp, file, { timeoutMs: 120_000, ...(bootId === undefined ? {} : { beforeContinue: async () => void (await replaceBootId(qmp, this.paths.gdbSocket, bootId)) }) });
    } catch (error) {
      killProcess(pid, 'SIGKILL');
      await waitForExit(pid, this.paths.overlay, 5000);
      await this.markStopped();
      throw new UserError(`machine "${this.name}": its warm state ${file} could not be loaded: ${error instanceof Error ? error.message : String(error)}`, {
        hint: 'run vmup again: this machine then boots from its disk instead. If new machines keep failing to load the state, set warmStart: false in the Vmfile',
        cause: error,
      });
    }
  }

  async saveState(file: string): Promise<void> {
    const pid = await this.pid();
    if (pid === undefined) throw new UserError(`machine "${this.name}" is not running, so there is no state to save`);
    const partial = `${file}.partial`;
    try {
      await withQmp(this.paths.qmpSocket, (qmp) => saveStateToFile(qmp, partial, { timeoutMs: 600_000 }));
      await rename(partial, file);
    } finally {
      await rm(partial, { force: true });
    }
    await this.stopProcess(pid, { graceful: false, timeoutMs: 0 });
    await this.markStopped();
  }

  async stop(options: StopOptions): Promise<'clean' | 'forced' | 'not running'> {
    const pid = await this.pid();
    const outcome = pid === undefined ? 'not running' : await this.stopProcess(pid, options);
    await this.markStopped();
    return outcome;
  }

  /** A clean powerdown within the timeout (when graceful), then QMP quit, then SIGKILL. */
  private async stopProcess(pid: number, options: StopOptions): Promise<'clean' | 'forced'> {
    if (options.graceful && options.timeoutMs > 0 && (await this.qmpCommand('system_powerdown'))) {
      const started = Date.now();
      const timer = setInterval(
        () => options.progress?.(`waiting for the guest to power off (${Math.round((Date.now() - started) / 1000)} s of ${options.timeoutMs / 1000} s)`),
        1000,
      );
      try {
        if (await waitForExit(pid, this.paths.overlay, options.timeoutMs)) return 'clean';
      } finally {
        clearInterval(timer);
      }
    }
    await this.qmpCommand('quit');
    if (await waitForExit(pid, this.paths.overlay, 5000)) return 'forced';
    killProcess(pid, 'SIGKILL');
    await waitForExit(pid, this.paths.overlay, 5000);
    return 'forced';
  }

  private async qmpCommand(command: string): Promise<boolean> {
    try {
      await withQmp(this.paths.qmpSocket, (qmp) => qmp.execute(command, {}, { timeoutMs: 3000 }), { timeoutMs: 3000 });
      return true;
    } catch {
      // QEMU already going away, or its monitor is stuck: the caller escalates.
      return false;
    }
  }

  /** Forgets what only held while running: the record's runtime fields, the pid file, the socket. */
  private async markStopped(): Promise<void> {
    const state = await readMachineState(this.paths.state).catch(() => undefined);
    if (state !== undefined && (state.sshPort !== undefined || state.accel !== undefined)) await writeMachineState(this.paths.state, withoutRuntime(state));
    await rm(this.paths.pidFile, { force: true });
    await rm(this.paths.qmpSocket, { force: true });
    await closeSshMaster(this.paths.sshControl);
  }

  async suspend(saved: () => Promise<void>): Promise<void> {
    const pid = await this.pid();
    if (pid === undefined) throw new UserError(`machine "${this.name}" is not running, so there is no memory to save`);
    await withQmp(this.paths.qmpSocket, async (qmp) => {
      // A leftover from an interrupted suspend would make savevm overwrite silently; drop it first.
      await qmp.hmp(`delvm ${SUSPEND_SNAPSHOT}`).catch(() => '');
      await this.savingMemory((timeoutMs) => hmpQuiet(qmp, `savevm ${SUSPEND_SNAPSHOT}`, `machine "${this.name}": save memory`, timeoutMs));
    });
    await saved();
    await this.stopProcess(pid, { graceful: false, timeoutMs: 0 });
    await this.markStopped();
  }

  async discardSavedState(): Promise<void> {
    if (!(await listSnapshots(this.paths.overlay)).some((s) => s.name === SUSPEND_SNAPSHOT)) return;
    if ((await this.pid()) !== undefined) {
      await withQmp(this.paths.qmpSocket, (qmp) => hmpQuiet(qmp, `delvm ${SUSPEND_SNAPSHOT}`, `machine "${this.name}": drop the saved memory`));
    } else {
      await snapshotStopped(this.paths, 'delete', SUSPEND_SNAPSHOT);
    }
  }

  /**
   * savevm writes the guest's memory into the overlay; on a full file system it fails
   * with a bare I/O error. Said plainly instead, with what is free and what is needed.
   * The failed save leaves the snapshot table, and so the earlier snapshots, as they were.
   */
  private async savingMemory(save: (timeoutMs: number) => Promise<void>): Promise<void> {
    const memory = (await readMachineState(this.paths.state).catch(() => undefined))?.launch?.memory;
    // savevm answers only when done and reports no progress on the way (QEMU runs it in
    // its main loop): wait as long as writing the memory at a slow 20 MiB/s would take.
    const timeoutMs = 120_000 + Math.ceil((memory ?? 0) / (20 * 1024 * 1024)) * 1000;
    try {
      await save(timeoutMs);
    } catch (error) {
      const dir = dirname(this.paths.overlay);
      const free = await statfs(dir).then((fs) => fs.bavail * fs.bsize, () => undefined);
      if (free !== undefined && memory !== undefined && free < memory + LOW_SPACE_MARGIN) {
        throw new UserError(`machine "${this.name}": the disk is full: the file system holding ${dir} has ${formatSize(free)} free, and saving the memory needs up to ${formatSize(memory)}`, {
          hint: 'free space there (vmfile snapshot delete NAME frees a snapshot\'s), then run the command again. Earlier snapshots are kept; if the guest fills the disk meanwhile, QEMU pauses it and vmup continues it',
          cause: error,
        });
      }
      throw error;
    }
  }

  async listSnapshots(): Promise<Snapshot[]> {
    return (await userSnapshots(this.paths)).map((s) => ({ name: s.name, date: s.date, memoryBytes: s.vmStateSize }));
  }

  async saveSnapshot(name: string): Promise<{ memory: boolean }> {
    if ((await userSnapshots(this.paths)).some((s) => s.name === name)) {
      throw snapshotTaken(this.name, name);
    }
    if ((await this.pid()) !== undefined) {
      await withQmp(this.paths.qmpSocket, (qmp) => this.savingMemory((timeoutMs) => hmpQuiet(qmp, `savevm ${name}`, `machine "${this.name}": save snapshot "${name}"`, timeoutMs)));
      return { memory: true };
    }
    await snapshotStopped(this.paths, 'create', name);
    return { memory: false };
  }

  async setGuestClock(): Promise<boolean> {
    return (await this.pid()) !== undefined && setClockThroughAgent(this.paths.agentSocket, AGENT_TIMEOUT_MS);
  }

  async applySnapshot(name: string): Promise<{ memory: boolean }> {
    const snapshot = await findSnapshot(this.paths, this.name, name);
    if ((await this.pid()) === undefined) {
      await snapshotStopped(this.paths, 'apply', name);
      return { memory: false };
    }
    if (snapshot.vmStateSize === 0) {
      throw snapshotWithoutMemory(this.name, name);
    }
    // The guest's TCP state goes back in time; a connection master would hang on it.
    await closeSshMaster(this.paths.sshControl);
    await withQmp(this.paths.qmpSocket, (qmp) => hmpQuiet(qmp, `loadvm ${name}`, `machine "${this.name}": restore snapshot "${name}"`));
    return { memory: true };
  }

  async deleteSnapshot(name: string): Promise<void> {
    await findSnapshot(this.paths, this.name, name);
    if ((await this.pid()) !== undefined) {
      await withQmp(this.paths.qmpSocket, (qmp) => hmpQuiet(qmp, `delvm ${name}`, `machine "${this.name}": delete snapshot "${name}"`));
    } else {
      await snapshotStopped(this.paths, 'delete', name);
    }
  }

  async exportDisk(destination: string, onProgress?: (fraction: number) => void): Promise<void> {
    const pid = await this.pid();
    if (pid !== undefined) throw new UserError(`machine "${this.name}" is running (pid ${pid}); its disk is still changing`, { hint: 'halt it first: vmhalt' });
    await convertImage(this.paths.overlay, destination, 'raw', { sourceFormat: 'qcow2', purpose: `flatten the disk of machine "${this.name}"`, ...(onProgress === undefined ? {} : { onProgress }) });
  }

  async destroy(): Promise<void> {
    const pid = await this.pid();
    if (pid !== undefined) await this.stopProcess(pid, { graceful: false, timeoutMs: 0 });
    await rm(this.paths.qmpSocket, { force: true });
    await closeSshMaster(this.paths.sshControl);
    // The machine lock lives in the directory; its holder's release tolerates its absence.
    await rm(this.paths.dir, { recursive: true, force: true });
  }
}

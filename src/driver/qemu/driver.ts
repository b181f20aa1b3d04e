/**
 * The QEMU driver: vmfile runs qemu-system itself, detached, and talks to it over QMP.
 *
 * It owns the QEMU command line (qemu/argv.ts, launch.ts), the process (qemu/process.ts:
 * a pid counts only while /proc says it is QEMU on this machine's overlay), qemu-img,
 * QMP, and stopping. Running vs stopped is decided here for snapshots: HMP
 * savevm/loadvm/delvm (disk and memory) on a running machine, qemu-img on a stopped one
 * (disk only). qcow2 updates its snapshot table only after a snapshot's data is written,
 * so a save that fails or is killed midway leaves the earlier snapshots as they were.
 */
import { chmod, rename, rm } from 'node:fs/promises';
import type { InstalledBox } from '../../box/store.js';
import { UserError } from '../../errors.js';
import { createOverlay, convertImage, imageInfo, listSnapshots } from '../../qemu/img.js';
import { killProcess, waitForExit } from '../../qemu/process.js';
import { hmpQuiet, withQmp } from '../../qmp/session.js';
import { closeSshMaster } from '../../ssh/master.js';
import { machinePathsIn, SUSPEND_SNAPSHOT, type MachinePaths } from '../../store/layout.js';
import { pathExists } from '../../store/exists.js';
import type { SshHop } from '../../ssh/hop.js';
import type { Driver, HostCheck, HostFacts, MachineLocation, MachineRequest, Snapshot, StartSpec, Started, StopOptions } from '../driver.js';
import { snapshotTaken, snapshotWithoutMemory } from '../driver.js';
import { setClockThroughAgent } from './agent.js';
import { qemuFiles, type QemuFiles } from './files.js';
import { checkLocal, localHost, localHypervisor, QEMU_FEATURES } from './host.js';
import { launch } from './launch.js';
import { savingMemory } from './memory.js';
import { saveStateToFile } from './migration.js';
import { qemuPid } from './pid.js';
import { findSnapshot, snapshotStopped, userSnapshots } from './snapshots.js';

/**
 * How long the guest agent may take to set the clock before SSH does it instead: it
 * answers in tens of milliseconds when it runs, and not at all when it does not.
 */
const AGENT_TIMEOUT_MS = 1_500;

export function qemuDriver(name: string, dir: string): Driver {
  return new QemuDriver(name, machinePathsIn(dir), qemuFiles(dir));
}

class QemuDriver implements Driver {
  readonly features = QEMU_FEATURES;

  constructor(
    private readonly name: string,
    private readonly paths: MachinePaths,
    private readonly files: QemuFiles,
  ) {}

  location(): MachineLocation {
    return { driver: 'qemu', host: 'this host', pidLabel: 'pid' };
  }

  placement(): undefined {
    return undefined;
  }

  host(): Promise<HostFacts> {
    return localHost();
  }

  check(request: MachineRequest, envAccel: string | undefined): Promise<HostCheck> {
    return checkLocal(request, envAccel);
  }

  hypervisor(): Promise<string> {
    return localHypervisor();
  }

  sshHop(): SshHop | undefined {
    return undefined;
  }

  consoleLog(): string {
    return this.files.serialLog;
  }

  diskFile(): string {
    return this.files.overlay;
  }

  hasDisk(): Promise<boolean> {
    return pathExists(this.files.overlay);
  }

  async base(): Promise<string | undefined> {
    // The backing file is named, never opened: a disk under .vmfile/ is not trusted to name a safe one.
    return (await imageInfo(this.files.overlay, 'qcow2')).fullBackingFile;
  }

  pid(): Promise<number | undefined> {
    return qemuPid(this.files);
  }

  async paused(): Promise<boolean> {
    return (await this.runState()) === 'stopped';
  }

  /** 'running', 'stopped' (CPUs stopped for any reason), or undefined when QEMU does not answer. */
  private async runState(): Promise<'running' | 'stopped' | undefined> {
    try {
      const result = await withQmp(this.files.qmpSocket, (qmp) => qmp.execute<{ running?: boolean }>('query-status', {}, { timeoutMs: 1000 }), { timeoutMs: 1000 });
      return result.running === false ? 'stopped' : 'running';
    } catch {
      return undefined;
    }
  }

  async continue(): Promise<boolean> {
    if ((await this.pid()) === undefined) throw new UserError(`machine "${this.name}" is not running, so there is nothing to continue`);
    return withQmp(this.files.qmpSocket, async (qmp) => {
      const { running } = await qmp.execute<{ running?: boolean }>('query-status', {}, { timeoutMs: 5000 });
      if (running !== false) return false;
      await qmp.execute('cont', {}, { timeoutMs: 5000 });
      return true;
    });
  }

  async continueAfterIoError(): Promise<boolean> {
    return withQmp(this.files.qmpSocket, async (qmp) => {
      // QEMU stops a guest whose disk write failed with ENOSPC (werror=enospc) in this state.
      const { status } = await qmp.execute<{ status?: string }>('query-status', {}, { timeoutMs: 5000 });
      if (status !== 'io-error') return false;
      await qmp.execute('cont', {}, { timeoutMs: 5000 });
      return true;
    });
  }

  async create(box: InstalledBox, diskBytes: number, base?: string): Promise<void> {
    await createOverlay(base ?? box.paths.disk, this.files.overlay, diskBytes);
  }

  async checkDisk(box: InstalledBox): Promise<void> {
    await imageInfo(this.files.overlay, 'qcow2').catch((error: unknown) => {
      throw new UserError(`machine "${this.name}": its disk ${this.files.overlay} cannot be read`, {
        hint: `check that box ${box.metadata.name} ${box.metadata.version} is still installed (vmfile box list)`,
        cause: error,
      });
    });
  }

  async start(spec: StartSpec): Promise<Started> {
    const running = await this.pid();
    if (running !== undefined) throw new UserError(`machine "${this.name}" is already running (pid ${running})`);
    await this.checkDisk(spec.box);
    return launch(this.name, this.paths, this.files, spec);
  }

  async saveState(file: string): Promise<void> {
    const pid = await this.pid();
    if (pid === undefined) throw new UserError(`machine "${this.name}" is not running, so there is no state to save`);
    const partial = `${file}.partial`;
    try {
      await withQmp(this.files.qmpSocket, (qmp) => saveStateToFile(qmp, partial, { timeoutMs: 600_000 }));
      await rename(partial, file);
    } finally {
      await rm(partial, { force: true });
    }
    await this.stopProcess(pid, { graceful: false, timeoutMs: 0 });
    await this.clearRuntime();
    // The base of every machine made from it from now on: never written again.
    await chmod(this.files.overlay, 0o400);
  }

  async stop(options: StopOptions): Promise<'clean' | 'forced' | 'not running'> {
    const pid = await this.pid();
    const outcome = pid === undefined ? 'not running' : await this.stopProcess(pid, options);
    await this.clearRuntime();
    return outcome;
  }

  /**
   * A clean powerdown within the timeout (when graceful, and only for a guest whose CPUs
   * run: a paused one never answers the button), then QMP quit, then SIGKILL.
   */
  private async stopProcess(pid: number, options: StopOptions): Promise<'clean' | 'forced'> {
    if (options.graceful && options.timeoutMs > 0 && (await this.runState()) === 'running' && (await this.qmpCommand('system_powerdown'))) {
      const started = Date.now();
      const timer = setInterval(
        () => options.progress?.(`waiting for the guest to power off (${Math.round((Date.now() - started) / 1000)} s of ${options.timeoutMs / 1000} s)`),
        1000,
      );
      try {
        if (await waitForExit(pid, this.files.overlay, options.timeoutMs)) return 'clean';
      } finally {
        clearInterval(timer);
      }
    }
    await this.qmpCommand('quit');
    if (await waitForExit(pid, this.files.overlay, 5000)) return 'forced';
    killProcess(pid, 'SIGKILL');
    await waitForExit(pid, this.files.overlay, 5000);
    return 'forced';
  }

  private async qmpCommand(command: string): Promise<boolean> {
    try {
      await withQmp(this.files.qmpSocket, (qmp) => qmp.execute(command, {}, { timeoutMs: 3000 }), { timeoutMs: 3000 });
      return true;
    } catch {
      // QEMU already going away, or its monitor is stuck: the caller escalates.
      return false;
    }
  }

  /** Forgets what only held while running: the pid file, the socket, the SSH connection master. */
  private async clearRuntime(): Promise<void> {
    await rm(this.files.pidFile, { force: true });
    await rm(this.files.qmpSocket, { force: true });
    await closeSshMaster(this.paths.sshControl);
  }

  async suspend(saved: () => Promise<void>): Promise<void> {
    const pid = await this.pid();
    if (pid === undefined) throw new UserError(`machine "${this.name}" is not running, so there is no memory to save`);
    await withQmp(this.files.qmpSocket, async (qmp) => {
      // A leftover from an interrupted suspend would make savevm overwrite silently; drop it first.
      await qmp.hmp(`delvm ${SUSPEND_SNAPSHOT}`).catch(() => '');
      await savingMemory(this.name, qmp, this.files.overlay, (timeoutMs) => hmpQuiet(qmp, `savevm ${SUSPEND_SNAPSHOT}`, `machine "${this.name}": save memory`, timeoutMs));
    });
    await saved();
    await this.stopProcess(pid, { graceful: false, timeoutMs: 0 });
    await this.clearRuntime();
  }

  async discardSavedState(): Promise<void> {
    if (!(await listSnapshots(this.files.overlay)).some((s) => s.name === SUSPEND_SNAPSHOT)) return;
    if ((await this.pid()) !== undefined) {
      await withQmp(this.files.qmpSocket, (qmp) => hmpQuiet(qmp, `delvm ${SUSPEND_SNAPSHOT}`, `machine "${this.name}": drop the saved memory`));
    } else {
      await snapshotStopped(this.files, 'delete', SUSPEND_SNAPSHOT);
    }
  }

  async listSnapshots(): Promise<Snapshot[]> {
    return (await userSnapshots(this.files)).map((s) => ({ name: s.name, date: s.date, memoryBytes: s.vmStateSize }));
  }

  async saveSnapshot(name: string): Promise<{ memory: boolean }> {
    if ((await userSnapshots(this.files)).some((s) => s.name === name)) throw snapshotTaken(this.name, name);
    if ((await this.pid()) !== undefined) {
      await withQmp(this.files.qmpSocket, (qmp) => savingMemory(this.name, qmp, this.files.overlay, (timeoutMs) => hmpQuiet(qmp, `savevm ${name}`, `machine "${this.name}": save snapshot "${name}"`, timeoutMs)));
      return { memory: true };
    }
    await snapshotStopped(this.files, 'create', name);
    return { memory: false };
  }

  async setGuestClock(): Promise<boolean> {
    return (await this.pid()) !== undefined && setClockThroughAgent(this.files.agentSocket, AGENT_TIMEOUT_MS);
  }

  async applySnapshot(name: string): Promise<{ memory: boolean }> {
    const snapshot = await findSnapshot(this.files, this.name, name);
    if ((await this.pid()) === undefined) {
      await snapshotStopped(this.files, 'apply', name);
      return { memory: false };
    }
    if (snapshot.vmStateSize === 0) throw snapshotWithoutMemory(this.name, name);
    // The guest's TCP state goes back in time; a connection master would hang on it.
    await closeSshMaster(this.paths.sshControl);
    await withQmp(this.files.qmpSocket, (qmp) => hmpQuiet(qmp, `loadvm ${name}`, `machine "${this.name}": restore snapshot "${name}"`));
    return { memory: true };
  }

  async deleteSnapshot(name: string): Promise<void> {
    await findSnapshot(this.files, this.name, name);
    if ((await this.pid()) !== undefined) {
      await withQmp(this.files.qmpSocket, (qmp) => hmpQuiet(qmp, `delvm ${name}`, `machine "${this.name}": delete snapshot "${name}"`));
    } else {
      await snapshotStopped(this.files, 'delete', name);
    }
  }

  async exportDisk(destination: string, onProgress?: (fraction: number) => void): Promise<void> {
    const pid = await this.pid();
    if (pid !== undefined) throw new UserError(`machine "${this.name}" is running (pid ${pid}); its disk is still changing`, { hint: 'halt it first: vmhalt' });
    await convertImage(this.files.overlay, destination, 'raw', { sourceFormat: 'qcow2', purpose: `flatten the disk of machine "${this.name}"`, ...(onProgress === undefined ? {} : { onProgress }) });
  }

  async destroy(): Promise<void> {
    const pid = await this.pid();
    if (pid !== undefined) await this.stopProcess(pid, { graceful: false, timeoutMs: 0 });
    await rm(this.files.qmpSocket, { force: true });
    await closeSshMaster(this.paths.sshControl);
    // A warm state's disk is read-only; its directory goes all the same.
    await rm(this.paths.dir, { recursive: true, force: true });
  }
}

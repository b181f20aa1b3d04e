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
import { hmpQuiet, withQmp } from '../../qmp/session.js';
import { closeSshMaster } from '../../ssh/master.js';
import { machinePathsIn, SUSPEND_SNAPSHOT, type MachinePaths } from '../../store/layout.js';
import { pathExists } from '../../store/exists.js';
import type { SshHop } from '../../ssh/hop.js';
import type { Driver, HostCheck, HostFacts, MachineLocation, MachineRequest, Snapshot, StartSpec, Started, StopOptions } from '../driver.js';
import { snapshotTaken, snapshotWithoutMemory } from '../driver.js';
import { agentChannelOpen, execThroughAgent, setClockThroughAgent, type AgentExec } from './agent.js';
import { closeSshForward, openSshForward } from './ssh-forward.js';
import { qemuFiles, type QemuFiles } from './files.js';
import { checkLocal, localHost, localHypervisor, QEMU_FEATURES } from './host.js';
import { launch } from './launch.js';
import { savingMemory } from './memory.js';
import { saveStateToFile } from './migration.js';
import { qemuPid } from './pid.js';
import { continueIf, runState, stopQemu } from './run-state.js';
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
    return (await runState(this.files)) === 'stopped';
  }

  async continue(): Promise<boolean> {
    if ((await this.pid()) === undefined) throw new UserError(`machine "${this.name}" is not running, so there is nothing to continue`);
    return continueIf(this.files, (status) => status.running === false);
  }

  continueAfterIoError(): Promise<boolean> {
    // QEMU stops a guest whose disk write failed with ENOSPC (werror=enospc) in this state.
    return continueIf(this.files, (status) => status.status === 'io-error');
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
    await stopQemu(this.files, pid, { graceful: false, timeoutMs: 0 });
    await this.clearRuntime();
    // The base of every machine made from it from now on: never written again.
    await chmod(this.files.overlay, 0o400);
  }

  async stop(options: StopOptions): Promise<'clean' | 'forced' | 'not running'> {
    const pid = await this.pid();
    const outcome = pid === undefined ? 'not running' : await stopQemu(this.files, pid, options);
    await this.clearRuntime();
    return outcome;
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
    await stopQemu(this.files, pid, { graceful: false, timeoutMs: 0 });
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

  execInGuest(argv: readonly string[], options: { stdin?: string; timeoutMs: number }): Promise<AgentExec | undefined> {
    return execThroughAgent(this.files.agentSocket, argv, options);
  }

  async guestAgentChannelOpen(): Promise<boolean | undefined> {
    if ((await this.pid()) === undefined) return undefined;
    return withQmp(this.files.qmpSocket, (qmp) => agentChannelOpen(qmp)).catch(() => undefined);
  }

  openSsh(port: number): Promise<number> {
    return openSshForward(this.name, this.files.qmpSocket, port);
  }

  closeSsh(port: number): Promise<void> {
    return closeSshForward(this.files.qmpSocket, port);
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
    if (pid !== undefined) await stopQemu(this.files, pid, { graceful: false, timeoutMs: 0 });
    await rm(this.files.qmpSocket, { force: true });
    await closeSshMaster(this.paths.sshControl);
    // A warm state's disk is read-only; its directory goes all the same.
    await rm(this.paths.dir, { recursive: true, force: true });
  }
}

/**
 * The libvirt driver: the machine is a persistent libvirt domain on a host named by its
 * URI (this one, or another over qemu+ssh://), its disk an overlay volume over the box's
 * volume in a storage pool, its seed an ISO volume. Everything goes through virsh.
 *
 * Where it keeps the contract differently from the built-in driver:
 * - pid(): the QEMU process id when the host is this one (libvirt's pid file), else
 *   libvirt's domain id; either way a number only while the domain runs. A host that
 *   does not answer is HostUnreachableError (status shows the machine "unreachable").
 * - suspend() is libvirt's managed save (the memory in the host's save directory, not
 *   in the disk); start() of a domain with one resumes from it.
 * - Snapshots are libvirt's internal snapshots: memory and disk while running, disk
 *   only while shut off, as with the built-in driver.
 * - Forwarded ports of a machine on another host come to this one through an SSH
 *   tunnel (tunnel.ts), so they are TCP only there.
 * - The private network is an isolated libvirt network per project on each host
 *   (network.ts); a Vmfile cannot put one network on several hosts (vmfile/config.ts).
 * - exportDisk() of a machine on another host flattens its disk into a raw volume there
 *   and downloads that (storage.ts).
 * Not kept yet (its features say so, and the host check refuses them before anything is
 * made): warm starts, live (virtiofs, 9p) folders, and boxes that boot their own firmware.
 */
import { readFile, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import type { InstalledBox } from '../../box/store.js';
import { UserError } from '../../errors.js';
import type { SshHop } from '../../ssh/hop.js';
import { closeSshMaster } from '../../ssh/master.js';
import { machinePathsIn, type MachinePaths } from '../../store/layout.js';
import type { Placement } from '../../store/machine.js';
import type { Phase } from '../../ui/reporter.js';
import { describeHost, parseLibvirtUri } from '../../vmfile/libvirt-uri.js';
import { HostUnreachableError, snapshotTaken, snapshotWithoutMemory, unknownSnapshot } from '../driver.js';
import type { Driver, HostCheck, HostFacts, MachineLocation, MachineRequest, Snapshot, StartSpec, Started, StopOptions } from '../driver.js';
import { domainName } from './domain.js';
import { libvirtFiles, type LibvirtFiles } from './files.js';
import { checkLibvirt, LIBVIRT_FEATURES, libvirtHostFacts } from './host.js';
import { deleteDomainSnapshot, listDomainSnapshots, revertDomainSnapshot, saveDomainSnapshot } from './snapshots.js';
import { startDomain, stopDomain, undefineDomain } from './start.js';
import { checkPool, createOverlayVolume, deleteVolume, ensureBoxVolumes, exportVolume } from './storage.js';
import { stopTunnel } from './tunnel.js';
import { LibvirtUnreachableError, NO_DOMAIN, NO_VOLUME, virsh, virshMaybe, type LibvirtHost } from './virsh.js';

/** Where a new machine goes on the host its Vmfile names; `machineDir` is its directory here. */
export function libvirtPlacement(provider: { uri: string; pool: string }, machineDir: string, machine: string): Placement {
  return { type: 'libvirt', uri: provider.uri, pool: provider.pool, domain: domainName(hostname(), machineDir, machine) };
}

export function libvirtDriver(name: string, dir: string, placement: Placement): Driver {
  return new LibvirtDriver(name, machinePathsIn(dir), libvirtFiles(dir), placement);
}

class LibvirtDriver implements Driver {
  readonly features = LIBVIRT_FEATURES;
  private readonly libvirt: LibvirtHost;
  private readonly domain: string;

  constructor(
    private readonly name: string,
    private readonly paths: MachinePaths,
    private readonly files: LibvirtFiles,
    private readonly where: Placement,
  ) {
    this.libvirt = { uri: where.uri, pool: where.pool };
    this.domain = where.domain;
  }

  private get disk(): string {
    return `${this.domain}.qcow2`;
  }

  private get seed(): string {
    return `${this.domain}-seed.iso`;
  }

  location(): MachineLocation {
    const local = parseLibvirtUri(this.libvirt.uri).local;
    return { driver: 'libvirt', host: describeHost(this.libvirt.uri), uri: this.libvirt.uri, name: this.domain, pidLabel: local ? 'pid' : 'domain id' };
  }

  placement(): Placement {
    return this.where;
  }

  host(): Promise<HostFacts> {
    return libvirtHostFacts(this.libvirt);
  }

  check(request: MachineRequest, envAccel: string | undefined): Promise<HostCheck> {
    return checkLibvirt(this.libvirt, request, envAccel);
  }

  async hypervisor(): Promise<string> {
    return (await virsh(this.libvirt, ['version'], { purpose: 'ask the host for its hypervisor version' })).trim();
  }

  sshHop(): SshHop | undefined {
    const uri = parseLibvirtUri(this.libvirt.uri);
    return uri.local ? undefined : uri;
  }

  consoleLog(): undefined {
    return undefined;
  }

  diskFile(): undefined {
    return undefined;
  }

  async hasDisk(): Promise<boolean> {
    // The disk is a volume on the host; the record alone says the machine was made.
    return true;
  }

  async base(): Promise<undefined> {
    return undefined;
  }

  private async state(): Promise<string | undefined> {
    const out = await virshMaybe(this.libvirt, ['domstate', this.domain], NO_DOMAIN, { purpose: `ask for the state of ${this.domain}`, timeoutMs: 30_000 });
    return out?.trim();
  }

  async pid(): Promise<number | undefined> {
    try {
      const state = await this.state();
      if (state !== 'running' && state !== 'paused' && state !== 'in shutdown') return undefined;
      if (this.libvirt.uri === 'qemu:///system') {
        const pid = Number.parseInt(await readFile(`/run/libvirt/qemu/${this.domain}.pid`, 'utf8').catch(() => ''), 10);
        if (Number.isInteger(pid) && pid > 0) return pid;
      }
      const id = Number.parseInt((await virsh(this.libvirt, ['domid', this.domain], { purpose: `ask for the id of ${this.domain}` })).trim(), 10);
      return Number.isInteger(id) && id > 0 ? id : undefined;
    } catch (error) {
      if (error instanceof LibvirtUnreachableError) throw new HostUnreachableError(error.message, { ...(error.hint === undefined ? {} : { hint: error.hint }), cause: error });
      return undefined;
    }
  }

  async paused(): Promise<boolean> {
    return (await this.state().catch(() => undefined)) === 'paused';
  }

  async continue(): Promise<boolean> {
    const state = await this.state();
    if (state === undefined || state === 'shut off') throw new UserError(`machine "${this.name}" is not running, so there is nothing to continue`);
    if (state !== 'paused') return false;
    await virsh(this.libvirt, ['resume', this.domain], { purpose: `continue ${this.domain}` });
    return true;
  }

  async continueAfterIoError(): Promise<boolean> {
    const reason = await virshMaybe(this.libvirt, ['domstate', '--reason', this.domain], NO_DOMAIN, { purpose: `ask for the state of ${this.domain}` });
    if (reason === undefined || !/paused \(I\/O error\)/i.test(reason)) return false;
    await virsh(this.libvirt, ['resume', this.domain], { purpose: `continue ${this.domain}` });
    return true;
  }

  async create(box: InstalledBox, diskBytes: number, base?: string, phase?: Phase): Promise<void> {
    if (base !== undefined) throw new UserError(`machine "${this.name}": a warm start is not available on libvirt yet`, { hint: 'set warmStart: false for this machine' });
    this.requireKernelBoot(box);
    await checkPool(this.libvirt);
    const volumes = await ensureBoxVolumes(this.libvirt, box, phase);
    await createOverlayVolume(this.libvirt, this.disk, volumes.disk, diskBytes);
  }

  private requireKernelBoot(box: InstalledBox): void {
    if (box.metadata.boot?.type !== 'kernel') {
      throw new UserError(`machine "${this.name}": box ${box.metadata.name} boots with its own firmware, which the libvirt provider does not run yet`, {
        hint: 'use a box with a kernel (such as debian-12), or provider: { type: "qemu" } for this machine',
      });
    }
  }

  async checkDisk(box: InstalledBox): Promise<void> {
    const info = await virshMaybe(this.libvirt, ['vol-info', '--pool', this.libvirt.pool, this.disk], NO_VOLUME, { purpose: `look up disk ${this.disk}` });
    if (info === undefined) {
      throw new UserError(`machine "${this.name}": its disk ${this.disk} is not in pool ${this.libvirt.pool} on libvirt host ${this.libvirt.uri}`, {
        hint: `vmfile destroy ${this.name} clears the machine; vmup then creates it again from box ${box.metadata.name} ${box.metadata.version}`,
      });
    }
  }

  async start(spec: StartSpec): Promise<Started> {
    const running = await this.pid();
    if (running !== undefined) throw new UserError(`machine "${this.name}" is already running (on ${this.libvirt.uri})`);
    this.refuseUnsupported(spec);
    await this.checkDisk(spec.box);
    const started = await startDomain({ name: this.name, host: this.libvirt, domain: this.domain, disk: this.disk, seed: this.seed, paths: this.paths, files: this.files, pid: () => this.pid() }, spec);
    await spec.onLaunched?.(started);
    return started;
  }

  private refuseUnsupported(spec: StartSpec): void {
    const not = (what: string, hint: string) => new UserError(`machine "${this.name}": ${what} is not available on libvirt yet`, { hint });
    if (spec.fromWarmState !== undefined) throw not('a warm start', 'set warmStart: false for this machine');
    const live = spec.folders.find((folder) => folder.type !== 'rsync');
    if (live !== undefined) throw not(`a ${live.type} folder (${live.guest})`, `give the folder type: "rsync"`);
    this.requireKernelBoot(spec.box);
  }

  async stop(options: StopOptions): Promise<'clean' | 'forced' | 'not running'> {
    const running = (await this.pid()) !== undefined;
    const outcome = running ? await stopDomain({ host: this.libvirt, domain: this.domain, pid: () => this.pid() }, options) : 'not running';
    await this.clearRuntime();
    return outcome;
  }

  private async clearRuntime(): Promise<void> {
    await stopTunnel(this.files);
    await closeSshMaster(this.paths.sshControl);
  }

  async suspend(saved: () => Promise<void>): Promise<void> {
    if ((await this.pid()) === undefined) throw new UserError(`machine "${this.name}" is not running, so there is no memory to save`);
    await virsh(this.libvirt, ['managedsave', this.domain], { purpose: `save the memory of ${this.domain}`, timeoutMs: 600_000 });
    await saved();
    await this.clearRuntime();
  }

  async saveState(): Promise<void> {
    throw new UserError(`machine "${this.name}": a warm state cannot be made on libvirt yet`, { hint: 'set warmStart: false for this machine' });
  }

  async discardSavedState(): Promise<void> {
    // A running domain has consumed its managed save already; only a shut-off one can hold one.
    if ((await this.pid()) !== undefined) return;
    await virshMaybe(this.libvirt, ['managedsave-remove', this.domain], NO_DOMAIN, { purpose: `drop the saved memory of ${this.domain}` });
  }

  listSnapshots(): Promise<Snapshot[]> {
    return listDomainSnapshots(this.libvirt, this.domain);
  }

  async saveSnapshot(name: string): Promise<{ memory: boolean }> {
    if ((await this.listSnapshots()).some((s) => s.name === name)) throw snapshotTaken(this.name, name);
    const memory = (await this.pid()) !== undefined;
    await saveDomainSnapshot(this.libvirt, this.domain, name);
    return { memory };
  }

  async applySnapshot(name: string): Promise<{ memory: boolean }> {
    const snapshot = await this.findSnapshot(name);
    const running = (await this.pid()) !== undefined;
    if (running && snapshot.memoryBytes === 0) throw snapshotWithoutMemory(this.name, name);
    // The guest's TCP state goes back in time; a connection master would hang on it.
    await closeSshMaster(this.paths.sshControl);
    await revertDomainSnapshot(this.libvirt, this.domain, name, running);
    return { memory: running };
  }

  async setGuestClock(): Promise<boolean> {
    // The domain has no guest agent channel of vmfile's.
    return false;
  }

  async execInGuest(): Promise<undefined> {
    return undefined;
  }

  /** features.heldSsh is false: the SSH port is forwarded as the domain starts. */
  openSsh = async (): Promise<number> => Promise.reject(new UserError(`machine "${this.name}": libvirt forwards its SSH port as the domain starts`));
  closeSsh = this.openSsh as () => Promise<never>;

  async deleteSnapshot(name: string): Promise<void> {
    await this.findSnapshot(name);
    await deleteDomainSnapshot(this.libvirt, this.domain, name);
  }

  private async findSnapshot(name: string): Promise<Snapshot> {
    const snapshots = await this.listSnapshots();
    const found = snapshots.find((s) => s.name === name);
    if (found === undefined) throw unknownSnapshot(this.name, name, snapshots);
    return found;
  }

  async exportDisk(destination: string, onProgress?: (fraction: number) => void): Promise<void> {
    if ((await this.pid()) !== undefined) throw new UserError(`machine "${this.name}" is running; its disk is still changing`, { hint: 'halt it first: vmhalt' });
    await exportVolume(this.libvirt, this.disk, destination, `flatten the disk of machine "${this.name}"`, onProgress);
  }

  async destroy(): Promise<void> {
    if ((await this.pid()) !== undefined) await virshMaybe(this.libvirt, ['destroy', this.domain], /not running|domain not found/i, { purpose: `stop ${this.domain}` });
    await undefineDomain({ host: this.libvirt, domain: this.domain, paths: this.paths });
    await deleteVolume(this.libvirt, this.disk);
    await deleteVolume(this.libvirt, this.seed);
    await stopTunnel(this.files);
    await closeSshMaster(this.paths.sshControl);
    await rm(this.paths.dir, { recursive: true, force: true });
  }
}

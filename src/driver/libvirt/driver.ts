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
 * Not kept yet, and refused with why: saveState() and warm starts, live (virtiofs, 9p) folders,
 * and boxes that boot their own firmware.
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hostname } from 'node:os';
import type { InstalledBox } from '../../box/store.js';
import { UserError } from '../../errors.js';
import { freePort, resolveForwards } from '../../network/ports.js';
import { convertImage } from '../../qemu/img.js';
import { closeSshMaster } from '../../ssh/master.js';
import type { MachinePaths } from '../../store/layout.js';
import type { Phase } from '../../ui/reporter.js';
import { readMachineState, withoutRuntime, writeMachineState, type LibvirtPlacement, type PortForward } from '../../store/machine.js';
import { HostUnreachableError, snapshotTaken, snapshotWithoutMemory, unknownSnapshot, type Driver, type Snapshot, type StartSpec, type Started, type StopOptions } from '../driver.js';
import { domainName, loadDomainTemplate, readDomain, renderDomain } from './domain.js';
import { ensureNetwork, networkName, networkOf, removeNetworkIfUnused } from './network.js';
import { deleteDomainSnapshot, listDomainSnapshots, revertDomainSnapshot, saveDomainSnapshot } from './snapshots.js';
import { checkPool, downloadFlattened, createOverlayVolume, deleteVolume, ensureBoxVolumes, uploadSeed, volumePath } from './storage.js';
import { LibvirtError, LibvirtUnreachableError, NO_DOMAIN, NO_VOLUME, virsh, virshMaybe, type LibvirtHost } from './virsh.js';
import { remoteForwards, startTunnel, stopTunnel } from './tunnel.js';
import { parseLibvirtUri } from '../../vmfile/libvirt-uri.js';


/** Where a new machine goes on the host its Vmfile names; `machineDir` is its directory here. */
export function libvirtPlacement(provider: { uri: string; pool: string }, machineDir: string, machine: string): LibvirtPlacement {
  return { type: 'libvirt', uri: provider.uri, pool: provider.pool, domain: domainName(hostname(), machineDir, machine) };
}

export function libvirtDriver(name: string, paths: MachinePaths, placement: LibvirtPlacement): Driver {
  return new LibvirtDriver(name, paths, placement);
}

class LibvirtDriver implements Driver {
  private readonly host: LibvirtHost;
  private readonly domain: string;

  constructor(
    private readonly name: string,
    private readonly paths: MachinePaths,
    placement: LibvirtPlacement,
  ) {
    this.host = { uri: placement.uri, pool: placement.pool };
    this.domain = placement.domain;
  }

  private get disk(): string {
    return `${this.domain}.qcow2`;
  }

  private get seed(): string {
    return `${this.domain}-seed.iso`;
  }

  private async state(): Promise<string | undefined> {
    const out = await virshMaybe(this.host, ['domstate', this.domain], NO_DOMAIN, { purpose: `ask for the state of ${this.domain}`, timeoutMs: 30_000 });
    return out?.trim();
  }

  async pid(): Promise<number | undefined> {
    try {
      const state = await this.state();
      if (state !== 'running' && state !== 'paused' && state !== 'in shutdown') return undefined;
      if (this.host.uri === 'qemu:///system') {
        const pid = Number.parseInt(await readFile(`/run/libvirt/qemu/${this.domain}.pid`, 'utf8').catch(() => ''), 10);
        if (Number.isInteger(pid) && pid > 0) return pid;
      }
      const id = Number.parseInt((await virsh(this.host, ['domid', this.domain], { purpose: `ask for the id of ${this.domain}` })).trim(), 10);
      return Number.isInteger(id) && id > 0 ? id : undefined;
    } catch (error) {
      if (error instanceof LibvirtUnreachableError) throw new HostUnreachableError(error.message, { ...(error.hint === undefined ? {} : { hint: error.hint }), cause: error });
      return undefined;
    }
  }

  async paused(): Promise<boolean> {
    return (await this.state().catch(() => undefined)) === 'paused';
  }

  async continueAfterIoError(): Promise<boolean> {
    const reason = await virshMaybe(this.host, ['domstate', '--reason', this.domain], NO_DOMAIN, { purpose: `ask for the state of ${this.domain}` });
    if (reason === undefined || !/paused \(I\/O error\)/i.test(reason)) return false;
    await virsh(this.host, ['resume', this.domain], { purpose: `continue ${this.domain}` });
    return true;
  }

  async create(box: InstalledBox, diskBytes: number, base?: string, phase?: Phase): Promise<void> {
    if (base !== undefined) throw new UserError(`machine "${this.name}": a warm start is not available on libvirt yet`, { hint: 'set warmStart: false for this machine' });
    this.requireKernelBoot(box);
    await checkPool(this.host);
    const volumes = await ensureBoxVolumes(this.host, box, phase);
    await createOverlayVolume(this.host, this.disk, volumes.disk, diskBytes);
  }

  private requireKernelBoot(box: InstalledBox): void {
    if (box.metadata.boot?.type !== 'kernel') {
      throw new UserError(`machine "${this.name}": box ${box.metadata.name} boots with its own firmware, which the libvirt provider does not run yet`, {
        hint: 'use a box with a kernel (such as debian-12), or provider: { type: "qemu" } for this machine',
      });
    }
  }

  async checkDisk(box: InstalledBox): Promise<void> {
    const info = await virshMaybe(this.host, ['vol-info', '--pool', this.host.pool, this.disk], NO_VOLUME, { purpose: `look up disk ${this.disk}` });
    if (info === undefined) {
      throw new UserError(`machine "${this.name}": its disk ${this.disk} is not in pool ${this.host.pool} on libvirt host ${this.host.uri}`, {
        hint: `vmfile destroy ${this.name} clears the machine; vmup then creates it again from box ${box.metadata.name} ${box.metadata.version}`,
      });
    }
  }

  async start(spec: StartSpec): Promise<Started> {
    const running = await this.pid();
    if (running !== undefined) throw new UserError(`machine "${this.name}" is already running (on ${this.host.uri})`);
    this.refuseUnsupported(spec);
    await this.checkDisk(spec.box);
    if (spec.fromSavedState) {
      await virsh(this.host, ['start', this.domain], { purpose: `resume ${this.domain} from its managed save` });
      return this.withTunnel(await this.started(), spec);
    }
    // A box volume removed from the host since is uploaded again: the disk's backing is found at its old path.
    const volumes = await ensureBoxVolumes(this.host, spec.box);
    const kernel = await volumePath(this.host, volumes.kernel ?? '');
    const initrd = volumes.initrd === undefined ? undefined : await volumePath(this.host, volumes.initrd);
    const boot = spec.box.metadata.boot;
    const cmdline = boot?.type === 'kernel' ? boot.cmdline : '';
    await uploadSeed(this.host, this.seed, this.paths.seedDir);
    const uuid = await this.refuseForeignDomain();
    const privateNetwork = await this.joinNetwork(spec);
    const template = await loadDomainTemplate();
    const local = parseLibvirtUri(this.host.uri).local;
    // Forwards bind on the libvirt host's loopback. On another host they go to ports
    // picked there, and a tunnel from this host (tunnel.ts) listens where the Vmfile asks.
    const forwards = local ? await resolveForwards(spec.machine, spec.ports, spec.onPortMoved ?? (() => {})) : remoteForwards(this.name, spec);
    for (let attempt = 1; ; attempt++) {
      const sshPort = local ? await freePort() : 20_000 + Math.floor(Math.random() * 40_000);
      const ssh: PortForward = { protocol: 'tcp', hostIp: '127.0.0.1', hostPort: sshPort, guestPort: 22 };
      const xml = renderDomain(template, {
        domain: this.domain,
        ...(uuid === undefined ? {} : { uuid }),
        machine: this.name,
        machineDir: this.paths.dir,
        accel: spec.accel,
        cpus: spec.cpus,
        memory: spec.memory,
        pool: this.host.pool,
        disk: this.disk,
        seed: this.seed,
        kernel,
        ...(initrd === undefined ? {} : { initrd }),
        cmdline,
        forwards: [ssh, ...forwards],
        ...(privateNetwork === undefined ? {} : { privateNetwork }),
      });
      // virsh reads the file here and sends its text to the host (node's stdin pipes are sockets, which /dev/stdin cannot open).
      await writeFile(this.paths.domainXml, xml, { mode: 0o600 });
      await virsh(this.host, ['define', this.paths.domainXml], { purpose: `define domain ${this.domain}` });
      try {
        await virsh(this.host, ['start', this.domain], { purpose: `start domain ${this.domain}` });
        return await this.withTunnel(await this.started(), spec);
      } catch (error) {
        if (attempt < 3 && error instanceof LibvirtError && /host forwarding rule|address already in use/i.test(error.said)) continue;
        throw error;
      }
    }
  }

  private refuseUnsupported(spec: StartSpec): void {
    const not = (what: string, hint: string) => new UserError(`machine "${this.name}": ${what} is not available on libvirt yet`, { hint });
    if (spec.fromWarmState !== undefined) throw not('a warm start', 'set warmStart: false for this machine');
    const live = spec.folders.find((folder) => folder.type !== 'rsync');
    if (live !== undefined) throw not(`a ${live.type} folder (${live.guest})`, `give the folder type: "rsync"`);
    this.requireKernelBoot(spec.box);
  }

  /** The project's network on the host, made if this is the first machine on it. */
  private async joinNetwork(spec: StartSpec): Promise<{ name: string; mac: string } | undefined> {
    const project = spec.privateNetwork?.project;
    if (spec.privateNetwork === undefined || project === undefined) return undefined;
    const name = networkName(hostname(), project);
    await ensureNetwork(this.host, name, join(this.paths.dir, 'libvirt-network.xml'));
    return { name, mac: spec.privateNetwork.mac };
  }

  /**
   * A domain of that name that vmfile did not define for this machine is someone else's:
   * never redefined. Resolves with the UUID of this machine's own, which a new
   * definition must keep (libvirt refuses the same name with another UUID).
   */
  private async refuseForeignDomain(): Promise<string | undefined> {
    const xml = await virshMaybe(this.host, ['dumpxml', '--inactive', this.domain], NO_DOMAIN, { purpose: `look up domain ${this.domain}` });
    if (xml === undefined) return undefined;
    const { dir, uuid } = readDomain(xml);
    if (dir === this.paths.dir && uuid !== undefined) return uuid;
    throw new UserError(`libvirt host ${this.host.uri} already has a domain named ${this.domain} that this machine did not make`, {
      hint: `look at it with: virsh -c ${this.host.uri} dominfo ${this.domain}; undefine it there if it is left over, or rename the machine`,
    });
  }

  /** The running domain's SSH port and forwards, read back from its definition (a resumed one keeps those it was started with). */
  private async started(): Promise<Started> {
    const xml = await virsh(this.host, ['dumpxml', this.domain], { purpose: `read domain ${this.domain}` });
    const [ssh, ...rest] = readDomain(xml).forwards;
    const pid = await this.pid();
    if (ssh === undefined || ssh.guestPort !== 22 || pid === undefined) throw new LibvirtError(`libvirt host ${this.host.uri}: domain ${this.domain} did not start with its SSH forward`, '', { hint: `look at it with: virsh -c ${this.host.uri} dumpxml ${this.domain}` });
    return { pid, sshPort: ssh.hostPort, forwards: rest };
  }

  async stop(options: StopOptions): Promise<'clean' | 'forced' | 'not running'> {
    const running = (await this.pid()) !== undefined;
    const outcome = running ? await this.stopDomain(options) : 'not running';
    await this.markStopped();
    return outcome;
  }

  private async stopDomain(options: StopOptions): Promise<'clean' | 'forced'> {
    if (options.graceful && options.timeoutMs > 0) {
      const asked = await virsh(this.host, ['shutdown', this.domain], { purpose: `shut down ${this.domain}` }).then(() => true, () => false);
      const started = Date.now();
      while (asked && Date.now() - started < options.timeoutMs) {
        if ((await this.pid()) === undefined) return 'clean';
        options.progress?.(`waiting for the guest to power off (${Math.round((Date.now() - started) / 1000)} s of ${options.timeoutMs / 1000} s)`);
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
    await virshMaybe(this.host, ['destroy', this.domain], /not running|domain not found/i, { purpose: `stop ${this.domain}` });
    return 'forced';
  }

  /** On another host: the tunnel that brings its forwarded ports here, and the ports as seen here. */
  private async withTunnel(started: Started, spec: StartSpec): Promise<Started> {
    const uri = parseLibvirtUri(this.host.uri);
    if (uri.local) return started;
    const here = await resolveForwards(spec.machine, spec.ports, spec.onPortMoved ?? (() => {}));
    // The domain's forwards are in the Vmfile's order (a resumed domain keeps those it was defined with).
    const pairs = here.map((forward, index) => ({ forward, there: started.forwards[index] }));
    const tunnel = pairs.flatMap(({ forward, there }) => (there === undefined ? [] : [{ listen: forward.hostIp, port: forward.hostPort, to: there.hostPort }]));
    await startTunnel(this.name, this.paths.dir, uri, tunnel).catch(async (error: unknown) => {
      await virshMaybe(this.host, ['destroy', this.domain], /not running|domain not found/i, { purpose: `stop ${this.domain}` });
      throw error;
    });
    return { ...started, forwards: here };
  }

  private async markStopped(): Promise<void> {
    await stopTunnel(this.paths.dir);
    const state = await readMachineState(this.paths.state).catch(() => undefined);
    if (state !== undefined && (state.sshPort !== undefined || state.accel !== undefined)) await writeMachineState(this.paths.state, withoutRuntime(state));
    await closeSshMaster(this.paths.sshControl);
  }

  async suspend(saved: () => Promise<void>): Promise<void> {
    if ((await this.pid()) === undefined) throw new UserError(`machine "${this.name}" is not running, so there is no memory to save`);
    await virsh(this.host, ['managedsave', this.domain], { purpose: `save the memory of ${this.domain}`, timeoutMs: 600_000 });
    await saved();
    await this.markStopped();
  }

  async saveState(): Promise<void> {
    throw new UserError(`machine "${this.name}": a warm state cannot be made on libvirt yet`, { hint: 'set warmStart: false for this machine' });
  }

  async discardSavedState(): Promise<void> {
    // A running domain has consumed its managed save already; only a shut-off one can hold one.
    if ((await this.pid()) !== undefined) return;
    await virshMaybe(this.host, ['managedsave-remove', this.domain], NO_DOMAIN, { purpose: `drop the saved memory of ${this.domain}` });
  }

  async listSnapshots(): Promise<Snapshot[]> {
    const memory = (await readMachineState(this.paths.state).catch(() => undefined))?.launch?.memory;
    return listDomainSnapshots(this.host, this.domain, memory ?? 1);
  }

  async saveSnapshot(name: string): Promise<{ memory: boolean }> {
    if ((await this.listSnapshots()).some((s) => s.name === name)) throw snapshotTaken(this.name, name);
    const memory = (await this.pid()) !== undefined;
    await saveDomainSnapshot(this.host, this.domain, name);
    return { memory };
  }

  async applySnapshot(name: string): Promise<{ memory: boolean }> {
    const snapshot = await this.findSnapshot(name);
    const running = (await this.pid()) !== undefined;
    if (running && snapshot.memoryBytes === 0) throw snapshotWithoutMemory(this.name, name);
    // The guest's TCP state goes back in time; a connection master would hang on it.
    await closeSshMaster(this.paths.sshControl);
    await revertDomainSnapshot(this.host, this.domain, name, running);
    return { memory: running };
  }

  async setGuestClock(): Promise<boolean> {
    // The domain has no guest agent channel of vmfile's.
    return false;
  }

  async deleteSnapshot(name: string): Promise<void> {
    await this.findSnapshot(name);
    await deleteDomainSnapshot(this.host, this.domain, name);
  }

  private async findSnapshot(name: string): Promise<Snapshot> {
    const snapshots = await this.listSnapshots();
    const found = snapshots.find((s) => s.name === name);
    if (found === undefined) throw unknownSnapshot(this.name, name, snapshots);
    return found;
  }

  async exportDisk(destination: string, onProgress?: (fraction: number) => void): Promise<void> {
    if ((await this.pid()) !== undefined) throw new UserError(`machine "${this.name}" is running; its disk is still changing`, { hint: 'halt it first: vmhalt' });
    if (!parseLibvirtUri(this.host.uri).local) {
      await downloadFlattened(this.host, this.disk, destination, onProgress);
      return;
    }
    const disk = await volumePath(this.host, this.disk);
    await convertImage(disk, destination, 'raw', { sourceFormat: 'qcow2', purpose: `flatten the disk of machine "${this.name}"`, ...(onProgress === undefined ? {} : { onProgress }) });
  }

  async destroy(): Promise<void> {
    if ((await this.pid()) !== undefined) await virshMaybe(this.host, ['destroy', this.domain], /not running|domain not found/i, { purpose: `stop ${this.domain}` });
    const defined = await virshMaybe(this.host, ['dumpxml', '--inactive', this.domain], NO_DOMAIN, { purpose: `look up domain ${this.domain}` });
    if (defined !== undefined) {
      await this.refuseForeignDomain();
      await virsh(this.host, ['undefine', this.domain, '--managed-save', '--snapshots-metadata', '--nvram'], { purpose: `remove domain ${this.domain}` });
      const network = networkOf(defined);
      if (network !== undefined) await removeNetworkIfUnused(this.host, network);
    }
    await deleteVolume(this.host, this.disk);
    await deleteVolume(this.host, this.seed);
    await stopTunnel(this.paths.dir);
    await closeSshMaster(this.paths.sshControl);
    await rm(this.paths.dir, { recursive: true, force: true });
  }
}

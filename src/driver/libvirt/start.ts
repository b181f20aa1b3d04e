/**
 * Starting a libvirt domain: the box's volumes there (uploaded again if the host lost
 * them), the seed ISO, the project's network, then the domain defined from
 * templates/libvirt/domain.xml.hbs and started; on another host, the SSH tunnel that
 * brings its forwarded ports here. A suspended domain (managed save) just starts.
 */
import { writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { UserError } from '../../errors.js';
import { freePort, resolveForwards } from '../../network/ports.js';
import type { MachinePaths } from '../../store/layout.js';
import type { PortForward } from '../../store/machine.js';
import { parseLibvirtUri } from '../../vmfile/libvirt-uri.js';
import type { StartSpec, Started, StopOptions } from '../driver.js';
import { loadDomainTemplate, readDomain, renderDomain } from './domain.js';
import type { LibvirtFiles } from './files.js';
import { ensureNetwork, networkName, networkOf, removeNetworkIfUnused } from './network.js';
import { ensureBoxVolumes, uploadSeed, volumePath } from './storage.js';
import { remoteForwards, startTunnel } from './tunnel.js';
import { LibvirtError, NO_DOMAIN, virsh, virshMaybe, type LibvirtHost } from './virsh.js';

export interface DomainTarget {
  name: string;
  host: LibvirtHost;
  domain: string;
  disk: string;
  seed: string;
  paths: MachinePaths;
  files: LibvirtFiles;
  pid: () => Promise<number | undefined>;
}

export async function startDomain(target: DomainTarget, spec: StartSpec): Promise<Started> {
  const { host, domain } = target;
  if (spec.fromSavedState) {
    await virsh(host, ['start', domain], { purpose: `resume ${domain} from its managed save` });
    return withTunnel(target, await started(target), spec);
  }
  // A box volume removed from the host since is uploaded again: the disk's backing is found at its old path.
  const volumes = await ensureBoxVolumes(host, spec.box);
  const kernel = await volumePath(host, volumes.kernel ?? '');
  const initrd = volumes.initrd === undefined ? undefined : await volumePath(host, volumes.initrd);
  const boot = spec.box.metadata.boot;
  const cmdline = boot?.type === 'kernel' ? boot.cmdline : '';
  await uploadSeed(host, target.seed, target.paths.seedDir);
  const uuid = await refuseForeignDomain(target);
  const privateNetwork = await joinNetwork(target, spec);
  const template = await loadDomainTemplate();
  const local = parseLibvirtUri(host.uri).local;
  // Forwards bind on the libvirt host's loopback. On another host they go to ports
  // picked there, and a tunnel from this host (tunnel.ts) listens where the Vmfile asks.
  const forwards = local ? await resolveForwards(spec.machine, spec.ports, spec.onPortMoved ?? (() => {})) : remoteForwards(target.name, spec);
  for (let attempt = 1; ; attempt++) {
    const sshPort = local ? await freePort() : 20_000 + Math.floor(Math.random() * 40_000);
    const ssh: PortForward = { protocol: 'tcp', hostIp: '127.0.0.1', hostPort: sshPort, guestPort: 22 };
    const xml = renderDomain(template, {
      domain,
      ...(uuid === undefined ? {} : { uuid }),
      machine: target.name,
      machineDir: target.paths.dir,
      accel: spec.accel,
      cpus: spec.cpus,
      memory: spec.memory,
      pool: host.pool,
      disk: target.disk,
      seed: target.seed,
      kernel,
      ...(initrd === undefined ? {} : { initrd }),
      cmdline,
      forwards: [ssh, ...forwards],
      ...(privateNetwork === undefined ? {} : { privateNetwork }),
    });
    // virsh reads the file here and sends its text to the host (node's stdin pipes are sockets, which /dev/stdin cannot open).
    await writeFile(target.files.domainXml, xml, { mode: 0o600 });
    await virsh(host, ['define', target.files.domainXml], { purpose: `define domain ${domain}` });
    try {
      await virsh(host, ['start', domain], { purpose: `start domain ${domain}` });
      return await withTunnel(target, await started(target), spec);
    } catch (error) {
      if (attempt < 3 && error instanceof LibvirtError && /host forwarding rule|address already in use/i.test(error.said)) continue;
      throw error;
    }
  }
}

/** The project's network on the host, made if this is the first machine on it. */
async function joinNetwork(target: DomainTarget, spec: StartSpec): Promise<{ name: string; mac: string } | undefined> {
  const project = spec.privateNetwork?.project;
  if (spec.privateNetwork === undefined || project === undefined) return undefined;
  const name = networkName(hostname(), project);
  await ensureNetwork(target.host, name, target.files.networkXml);
  return { name, mac: spec.privateNetwork.mac };
}

/**
 * A domain of that name that vmfile did not define for this machine is someone else's:
 * never redefined. Resolves with the UUID of this machine's own, which a new
 * definition must keep (libvirt refuses the same name with another UUID).
 */
export async function refuseForeignDomain(target: Pick<DomainTarget, 'host' | 'domain' | 'paths'>): Promise<string | undefined> {
  const { host, domain } = target;
  const xml = await virshMaybe(host, ['dumpxml', '--inactive', domain], NO_DOMAIN, { purpose: `look up domain ${domain}` });
  if (xml === undefined) return undefined;
  const { dir, uuid } = readDomain(xml);
  if (dir === target.paths.dir && uuid !== undefined) return uuid;
  throw new UserError(`libvirt host ${host.uri} already has a domain named ${domain} that this machine did not make`, {
    hint: `look at it with: virsh -c ${host.uri} dominfo ${domain}; undefine it there if it is left over, or rename the machine`,
  });
}

/** The running domain's SSH port and forwards, read back from its definition (a resumed one keeps those it was started with). */
async function started(target: DomainTarget): Promise<Started> {
  const { host, domain } = target;
  const xml = await virsh(host, ['dumpxml', domain], { purpose: `read domain ${domain}` });
  const [ssh, ...rest] = readDomain(xml).forwards;
  const pid = await target.pid();
  if (ssh === undefined || ssh.guestPort !== 22 || pid === undefined) throw new LibvirtError(`libvirt host ${host.uri}: domain ${domain} did not start with its SSH forward`, '', { hint: `look at it with: virsh -c ${host.uri} dumpxml ${domain}` });
  return { pid, sshPort: ssh.hostPort, forwards: rest };
}

/** On another host: the tunnel that brings its forwarded ports here, and the ports as seen here. */
async function withTunnel(target: DomainTarget, running: Started, spec: StartSpec): Promise<Started> {
  const uri = parseLibvirtUri(target.host.uri);
  if (uri.local) return running;
  const here = await resolveForwards(spec.machine, spec.ports, spec.onPortMoved ?? (() => {}));
  // The domain's forwards are in the Vmfile's order (a resumed domain keeps those it was defined with).
  const pairs = here.map((forward, index) => ({ forward, there: running.forwards[index] }));
  const tunnel = pairs.flatMap(({ forward, there }) => (there === undefined ? [] : [{ listen: forward.hostIp, port: forward.hostPort, to: there.hostPort }]));
  await startTunnel(target.name, target.files, uri, tunnel).catch(async (error: unknown) => {
    await virshMaybe(target.host, ['destroy', target.domain], /not running|domain not found/i, { purpose: `stop ${target.domain}` });
    throw error;
  });
  return { ...running, forwards: here };
}

/** Removes the domain's definition (its managed save and snapshot records with it), and the project network once no domain uses it. */
export async function undefineDomain(target: Pick<DomainTarget, 'host' | 'domain' | 'paths'>): Promise<void> {
  const { host, domain } = target;
  const defined = await virshMaybe(host, ['dumpxml', '--inactive', domain], NO_DOMAIN, { purpose: `look up domain ${domain}` });
  if (defined === undefined) return;
  await refuseForeignDomain(target);
  await virsh(host, ['undefine', domain, '--managed-save', '--snapshots-metadata', '--nvram'], { purpose: `remove domain ${domain}` });
  const network = networkOf(defined);
  if (network !== undefined) await removeNetworkIfUnused(host, network);
}

/** The power button (only for a guest that runs: a paused one never answers it) and a wait, then destroy. */
export async function stopDomain(target: Pick<DomainTarget, 'host' | 'domain' | 'pid'>, options: StopOptions): Promise<'clean' | 'forced'> {
  const { host, domain } = target;
  const state = options.graceful && options.timeoutMs > 0 ? (await virshMaybe(host, ['domstate', domain], NO_DOMAIN, { purpose: `ask for the state of ${domain}` }))?.trim() : undefined;
  if (state === 'running') {
    const asked = await virsh(host, ['shutdown', domain], { purpose: `shut down ${domain}` }).then(() => true, () => false);
    const started = Date.now();
    while (asked && Date.now() - started < options.timeoutMs) {
      if ((await target.pid()) === undefined) return 'clean';
      options.progress?.(`waiting for the guest to power off (${Math.round((Date.now() - started) / 1000)} s of ${options.timeoutMs / 1000} s)`);
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
  await virshMaybe(host, ['destroy', domain], /not running|domain not found/i, { purpose: `stop ${domain}` });
  return 'forced';
}

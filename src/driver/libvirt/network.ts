/**
 * A Vmfile's private network on a libvirt host: an isolated libvirt network, one per
 * project per host, defined by the first machine that joins it and removed with the
 * last. Isolated means a bridge with no address on the host, no DHCP and no forwarding:
 * only the guests on it reach each other, as on vmfile's own switch, and each guest sets
 * its own address on the NIC with its MAC (guest/requirements.ts, as with the built-in
 * driver). libvirt 9.0 keeps no metadata on networks, so a network of vmfile's name is
 * taken for vmfile's only while it is isolated; one with an address or forwarding is
 * someone else's and refused.
 */
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { UserError } from '../../errors.js';
import { escapeXml } from './domain.js';
import { withLocalLock } from './storage.js';
import { NO_DOMAIN, NO_NETWORK, virsh, virshMaybe, type LibvirtHost } from './virsh.js';

/** The network's name on its host: a digest of where the project is (this host, its directory). */
export function networkName(hostname: string, projectDir: string): string {
  return `vmfile-net-${createHash('sha256').update(`${hostname}\0${projectDir}`).digest('hex').slice(0, 12)}`;
}

export function networkXml(name: string): string {
  return `<network>\n  <name>${escapeXml(name)}</name>\n  <bridge stp='off'/>\n</network>\n`;
}

/** Defines and starts the network unless it runs; `xmlFile` is a private file here for virsh to read. */
export async function ensureNetwork(host: LibvirtHost, name: string, xmlFile: string): Promise<void> {
  await withNetworkLock(name, `join it on libvirt host ${host.uri}`, async () => {
    const xml = await virshMaybe(host, ['net-dumpxml', '--inactive', name], NO_NETWORK, { purpose: `look up network ${name}` });
    if (xml === undefined) {
      await writeFile(xmlFile, networkXml(name), { mode: 0o600 });
      await virsh(host, ['net-define', xmlFile], { purpose: `define network ${name}` });
    } else if (/<forward\b|<ip\b/.test(xml)) {
      throw new UserError(`libvirt host ${host.uri} already has a network named ${name} that vmfile did not make (it has an address or forwarding)`, {
        hint: `look at it with: virsh -c ${host.uri} net-dumpxml ${name}; remove it there if it is left over`,
      });
    }
    const active = /^active:\s*yes/im.test(await virsh(host, ['net-info', name], { purpose: `ask for the state of network ${name}` }));
    if (!active) await virsh(host, ['net-start', name], { purpose: `start network ${name}` });
  });
}

/** Removes the network once no domain on the host is defined on it. */
export async function removeNetworkIfUnused(host: LibvirtHost, name: string): Promise<void> {
  await withNetworkLock(name, `remove it from libvirt host ${host.uri}`, async () => {
    const domains = (await virsh(host, ['list', '--all', '--name'], { purpose: 'list domains' })).split('\n').map((line) => line.trim());
    for (const domain of domains.filter((d) => d.startsWith('vmfile-'))) {
      const xml = await virshMaybe(host, ['dumpxml', '--inactive', domain], NO_DOMAIN, { purpose: `look up domain ${domain}` });
      if (xml !== undefined && networkOf(xml) === name) return;
    }
    await virshMaybe(host, ['net-destroy', name], new RegExp(`not active|${NO_NETWORK.source}`, 'i'), { purpose: `stop network ${name}` });
    await virshMaybe(host, ['net-undefine', name], NO_NETWORK, { purpose: `remove network ${name}` });
  });
}

/** The libvirt network a domain's XML puts its private NIC on. */
export function networkOf(domainXml: string): string | undefined {
  return /<interface type=(['"])network\1>[\s\S]*?<source network=(['"])([^'"]*)\2/.exec(domainXml)?.[3];
}

function withNetworkLock(name: string, operation: string, fn: () => Promise<void>): Promise<void> {
  return withLocalLock(`libvirt-${name}`, `network ${name}`, operation, fn, 120_000);
}

/**
 * A domain's snapshots: libvirt's internal ones, in the machine's qcow2 (memory and disk
 * while it runs, disk only while it is shut off). The seed disk is left out
 * (snapshot='no' in the domain XML): it is read-only and made again at every boot.
 */
import type { Snapshot } from '../driver.js';
import { NO_DOMAIN, NO_SNAPSHOT, virsh, virshMaybe, type LibvirtHost } from './virsh.js';

/** A snapshot with memory is reported to hold the guest's memory, as its domain definition says (libvirt does not say more). */
export async function listDomainSnapshots(host: LibvirtHost, domain: string): Promise<Snapshot[]> {
  const names = await virshMaybe(host, ['snapshot-list', domain, '--name'], NO_DOMAIN, { purpose: `list the snapshots of ${domain}` });
  const snapshots: Snapshot[] = [];
  for (const name of (names ?? '').split('\n').map((line) => line.trim()).filter((line) => line !== '')) {
    const xml = await virsh(host, ['snapshot-dumpxml', domain, name], { purpose: `read snapshot ${name}` });
    const date = Number(/<creationTime>(\d+)<\/creationTime>/.exec(xml)?.[1] ?? 0);
    const memory = /<memory snapshot=(['"])internal\1/.test(xml) || /<state>(running|paused)<\/state>/.test(xml);
    snapshots.push({ name, date, memoryBytes: memory ? guestMemory(xml) : 0 });
  }
  return snapshots;
}

export async function saveDomainSnapshot(host: LibvirtHost, domain: string, name: string): Promise<void> {
  await virsh(host, ['snapshot-create-as', domain, name, '--atomic'], { purpose: `save snapshot "${name}" of ${domain}`, timeoutMs: 600_000 });
}

/** A running domain stays running on the snapshot; a shut-off one gets the snapshot's disk and stays shut off. */
export async function revertDomainSnapshot(host: LibvirtHost, domain: string, name: string, running: boolean): Promise<void> {
  await virsh(host, ['snapshot-revert', domain, name, running ? '--running' : '--paused'], { purpose: `restore snapshot "${name}" of ${domain}`, timeoutMs: 600_000 });
  if (running) return;
  const state = (await virsh(host, ['domstate', domain], { purpose: `ask for the state of ${domain}` })).trim();
  if (state !== 'shut off') await virsh(host, ['destroy', domain], { purpose: `leave ${domain} halted after the restore` });
}

export async function deleteDomainSnapshot(host: LibvirtHost, domain: string, name: string): Promise<void> {
  await virshMaybe(host, ['snapshot-delete', domain, name], NO_SNAPSHOT, { purpose: `delete snapshot "${name}" of ${domain}` });
}

/** The guest memory a snapshot's domain definition gives, in bytes (at least 1, so "has memory" stays true). */
export function guestMemory(snapshotXml: string): number {
  const match = /<domain\b[\s\S]*?<memory(?:\s+unit=(['"])(\w+)\1)?\s*>(\d+)<\/memory>/.exec(snapshotXml);
  const units: Record<string, number> = { b: 1, bytes: 1, KiB: 1024, k: 1024, MiB: 1024 ** 2, M: 1024 ** 2, GiB: 1024 ** 3, G: 1024 ** 3 };
  const bytes = match === null ? 0 : Number(match[3]) * (units[match[2] ?? 'KiB'] ?? 1024);
  return Math.max(1, bytes);
}

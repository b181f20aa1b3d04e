/**
 * A domain's snapshots: libvirt's internal ones, in the machine's qcow2 (memory and disk
 * while it runs, disk only while it is shut off). The seed disk is left out
 * (snapshot='no' in the domain XML): it is read-only and made again at every boot.
 */
import type { Snapshot } from '../driver.js';
import { NO_DOMAIN, NO_SNAPSHOT, virsh, virshMaybe, type LibvirtHost } from './virsh.js';

/** `memoryBytes`: what a snapshot with memory is reported to hold (libvirt does not say; the guest's memory). */
export async function listDomainSnapshots(host: LibvirtHost, domain: string, memoryBytes: number): Promise<Snapshot[]> {
  const names = await virshMaybe(host, ['snapshot-list', domain, '--name'], NO_DOMAIN, { purpose: `list the snapshots of ${domain}` });
  const snapshots: Snapshot[] = [];
  for (const name of (names ?? '').split('\n').map((line) => line.trim()).filter((line) => line !== '')) {
    const xml = await virsh(host, ['snapshot-dumpxml', domain, name], { purpose: `read snapshot ${name}` });
    const date = Number(/<creationTime>(\d+)<\/creationTime>/.exec(xml)?.[1] ?? 0);
    const memory = /<memory snapshot=(['"])internal\1/.test(xml) || /<state>(running|paused)<\/state>/.test(xml);
    snapshots.push({ name, date, memoryBytes: memory ? memoryBytes : 0 });
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

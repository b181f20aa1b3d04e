/**
 * A QEMU machine's snapshots as its disk holds them: the user's (suspend's own is not
 * one of them), looked up by name, and the offline work on a stopped machine, which
 * keeps a UEFI machine's variable store in step with its disk.
 */
import { listSnapshots, snapshotOffline, type DiskSnapshot } from '../../qemu/img.js';
import { pathExists } from '../../store/exists.js';
import { SUSPEND_SNAPSHOT } from '../../store/layout.js';
import type { QemuFiles } from './files.js';
import { unknownSnapshot } from '../driver.js';

export async function userSnapshots(paths: Pick<QemuFiles, 'overlay' | 'firmwareVars'>): Promise<DiskSnapshot[]> {
  return (await listSnapshots(paths.overlay)).filter((s) => s.name !== SUSPEND_SNAPSHOT);
}

/** The snapshot called `name`; a UserError listing the real ones when there is none. */
export async function findSnapshot(paths: Pick<QemuFiles, 'overlay' | 'firmwareVars'>, machine: string, name: string): Promise<DiskSnapshot> {
  const snapshots = await userSnapshots(paths);
  const found = snapshots.find((s) => s.name === name);
  if (found === undefined) {
    throw unknownSnapshot(machine, name, snapshots);
  }
  return found;
}

/** Offline snapshot work touches the variable store too, so both stay one snapshot. */
export async function snapshotStopped(paths: Pick<QemuFiles, 'overlay' | 'firmwareVars'>, action: 'create' | 'apply' | 'delete', name: string): Promise<void> {
  await snapshotOffline(paths.overlay, action, name);
  if (!(await pathExists(paths.firmwareVars))) return;
  const has = (await listSnapshots(paths.firmwareVars)).some((snapshot) => snapshot.name === name);
  if (action === 'create' || has) await snapshotOffline(paths.firmwareVars, action, name);
}

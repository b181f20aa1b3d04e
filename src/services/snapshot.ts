/**
 * Snapshots of a machine, kept inside its overlay disk as qcow2 internal snapshots.
 *
 * Running machine: through QMP (savevm/loadvm/delvm), disk AND memory, so a restore
 * brings back the processes that were running. Halted machine: through qemu-img on the
 * overlay, disk only. Every operation holds the machine lock, so two never interleave.
 * qcow2 updates its snapshot table only after a snapshot's data is written, so a save
 * that fails or is killed midway leaves the earlier snapshots as they were.
 */
import { UserError } from '../errors.js';
import { listSnapshots, snapshotOffline, type DiskSnapshot } from '../qemu/img.js';
import { hmpQuiet, withQmp } from '../qmp/session.js';
import { SshSession } from '../ssh/client.js';
import { SUSPEND_SNAPSHOT } from '../state/layout.js';
import { withMachineLock } from '../state/lock.js';
import type { Project } from '../vmfile/config.js';
import { inPhase } from '../ui/reporter.js';
import { sshTargetFor, syncGuestClock } from './communicator.js';
import { machineStatus, selectMachines, type MachineStatus, type ServiceContext } from './machine.js';

const NAME = /^[A-Za-z][A-Za-z0-9._-]{0,63}$/;
const PUSH_PREFIX = 'push-';

export interface SnapshotInfo {
  name: string;
  date: string;
  /** Bytes of saved memory; 0 for disk-only snapshots. */
  size: number;
  memory: boolean;
}

export interface SnapshotTarget {
  project: Project;
  machine?: string;
}

/** Snapshot names start with a letter (QEMU also matches bare numbers as snapshot ids). */
export function checkSnapshotName(name: string): void {
  if (name === SUSPEND_SNAPSHOT) throw new UserError(`snapshot name "${name}" is reserved for vmfile suspend`, { hint: 'choose another name' });
  if (!NAME.test(name)) {
    throw new UserError(`snapshot name ${JSON.stringify(name)} is not valid`, {
      hint: 'use 1-64 letters, digits, ".", "_" and "-", starting with a letter',
    });
  }
}

export async function snapshotList(target: SnapshotTarget): Promise<SnapshotInfo[]> {
  const machine = await created(target);
  return (await userSnapshots(machine)).map(describe);
}

export async function snapshotSave(target: SnapshotTarget & { name: string }, context: ServiceContext): Promise<{ machine: string; memory: boolean; seconds: number }> {
  checkSnapshotName(target.name);
  const machine = await created(target);
  return withMachineLock(machine.paths.lock, machine.name, 'snapshot save', async () => {
    const current = await refuseSuspended(await machineStatus(target.project.dir, machine.name), 'save a snapshot of');
    if ((await userSnapshots(current)).some((s) => s.name === target.name)) {
      throw new UserError(`machine "${current.name}" already has a snapshot "${target.name}"`, { hint: `delete it first (vmfile snapshot delete ${target.name}) or choose another name` });
    }
    const started = performance.now();
    const online = current.status === 'running';
    if (online) refuseLiveFs(current, 'save a snapshot with memory');
    await inPhase(context.reporter, current.name, `Saving snapshot "${target.name}" (${online ? 'disk and memory' : 'disk only, machine halted'})`, async () => {
      if (online) await withQmp(current.paths.qmpSocket, (qmp) => hmpQuiet(qmp, `savevm ${target.name}`, `machine "${current.name}": save snapshot "${target.name}"`));
      else await snapshotOffline(current.paths.overlay, 'create', target.name);
    });
    return { machine: current.name, memory: online, seconds: (performance.now() - started) / 1000 };
  });
}

export async function snapshotRestore(target: SnapshotTarget & { name: string }, context: ServiceContext): Promise<{ machine: string; memory: boolean; seconds: number }> {
  const machine = await created(target);
  return withMachineLock(machine.paths.lock, machine.name, 'snapshot restore', async () => {
    const current = await refuseSuspended(await machineStatus(target.project.dir, machine.name), 'restore a snapshot of');
    const snapshot = await findSnapshot(current, target.name);
    const started = performance.now();
    if (current.status !== 'running') {
      await inPhase(context.reporter, current.name, `Restoring snapshot "${target.name}" (disk only, machine halted)`, () =>
        snapshotOffline(current.paths.overlay, 'apply', target.name),
      );
      return { machine: current.name, memory: false, seconds: (performance.now() - started) / 1000 };
    }
    if (snapshot.vmStateSize === 0) {
      throw new UserError(`machine "${current.name}": snapshot "${target.name}" holds no memory (it was taken while halted), so it cannot be loaded into the running machine`, {
        hint: `halt the machine (vmhalt), then restore it: vmfile snapshot restore ${target.name}`,
      });
    }
    await inPhase(context.reporter, current.name, `Restoring snapshot "${target.name}" (disk and memory)`, () =>
      withQmp(current.paths.qmpSocket, (qmp) => hmpQuiet(qmp, `loadvm ${target.name}`, `machine "${current.name}": restore snapshot "${target.name}"`)),
    );
    const seconds = (performance.now() - started) / 1000;
    await inPhase(context.reporter, current.name, 'Setting the guest clock', () => syncClock(current));
    return { machine: current.name, memory: true, seconds };
  });
}

export async function snapshotDelete(target: SnapshotTarget & { name: string }, context: ServiceContext): Promise<void> {
  const machine = await created(target);
  await withMachineLock(machine.paths.lock, machine.name, 'snapshot delete', async () => {
    const current = await machineStatus(target.project.dir, machine.name);
    await findSnapshot(current, target.name);
    await inPhase(context.reporter, current.name, `Deleting snapshot "${target.name}"`, async () => {
      if (current.status === 'running') {
        await withQmp(current.paths.qmpSocket, (qmp) => hmpQuiet(qmp, `delvm ${target.name}`, `machine "${current.name}": delete snapshot "${target.name}"`));
      } else {
        await snapshotOffline(current.paths.overlay, 'delete', target.name);
      }
    });
  });
}

/** Vagrant's stack: push saves a snapshot with a generated name. */
export async function snapshotPush(target: SnapshotTarget, context: ServiceContext): Promise<string> {
  const name = `${PUSH_PREFIX}${new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').replace(/\..*/, '')}-${String(Date.now() % 1000).padStart(3, '0')}`;
  await snapshotSave({ ...target, name }, context);
  return name;
}

/** Restores the newest pushed snapshot and, unless `keep`, deletes it. */
export async function snapshotPop(target: SnapshotTarget & { keep: boolean }, context: ServiceContext): Promise<string> {
  const machine = await created(target);
  const pushed = (await userSnapshots(machine)).filter((s) => s.name.startsWith(PUSH_PREFIX));
  const newest = pushed.sort((a, b) => a.date - b.date || a.name.localeCompare(b.name)).at(-1);
  if (newest === undefined) throw new UserError(`machine "${machine.name}" has no pushed snapshot`, { hint: 'vmfile snapshot push saves one' });
  await snapshotRestore({ ...target, name: newest.name }, context);
  if (!target.keep) await snapshotDelete({ ...target, name: newest.name }, context);
  return newest.name;
}

/** How many user snapshots a machine has (for destroy's report). */
export async function countSnapshots(status: MachineStatus): Promise<number> {
  return (await userSnapshots(status).catch(() => [])).length;
}

async function created(target: SnapshotTarget): Promise<MachineStatus> {
  const [machine] = selectMachines(target.project, target.machine === undefined ? [] : [target.machine]);
  if (machine === undefined) throw new UserError('this Vmfile defines no machine');
  const current = await machineStatus(target.project.dir, machine.name);
  if (current.status === 'not created') throw new UserError(`machine "${machine.name}" is not created`, { hint: 'create it with: vmup' });
  return current;
}

async function refuseSuspended(current: MachineStatus, what: string): Promise<MachineStatus> {
  if (current.status === 'suspended') {
    throw new UserError(`machine "${current.name}" is suspended; cannot ${what} it now`, { hint: 'resume it first: vmfile resume' });
  }
  return current;
}

/** QEMU cannot save the state of a vhost-user-fs (virtiofs) device. */
export function refuseLiveFs(machine: MachineStatus, what: string): void {
  const live = machine.state?.folders?.filter((folder) => folder.type === 'virtiofs') ?? [];
  if (live.length > 0) {
    throw new UserError(`machine "${machine.name}": cannot ${what} while a virtiofs folder is attached (${live.map((f) => f.guest).join(', ')}): QEMU cannot save virtiofs state`, {
      hint: "halt the machine and snapshot it then (disk only), or give the folder type: 'rsync' in the Vmfile",
    });
  }
}

async function userSnapshots(machine: MachineStatus): Promise<DiskSnapshot[]> {
  return (await listSnapshots(machine.paths.overlay)).filter((s) => s.name !== SUSPEND_SNAPSHOT);
}

async function findSnapshot(machine: MachineStatus, name: string): Promise<DiskSnapshot> {
  const snapshots = await userSnapshots(machine);
  const found = snapshots.find((s) => s.name === name);
  if (found === undefined) {
    throw new UserError(`machine "${machine.name}" has no snapshot "${name}"`, {
      hint: snapshots.length === 0 ? 'it has no snapshots; vmfile snapshot save NAME makes one' : `its snapshots: ${snapshots.map((s) => s.name).join(', ')}`,
    });
  }
  return found;
}

function describe(snapshot: DiskSnapshot): SnapshotInfo {
  return { name: snapshot.name, date: new Date(snapshot.date * 1000).toISOString(), size: snapshot.vmStateSize, memory: snapshot.vmStateSize > 0 };
}

async function syncClock(machine: MachineStatus): Promise<void> {
  if (machine.state?.sshPort === undefined) return;
  const session = await SshSession.connect(await sshTargetFor(machine.paths, machine.state, machine.state.sshPort));
  try {
    await syncGuestClock(session);
  } finally {
    session.close();
  }
}

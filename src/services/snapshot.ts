/**
 * Snapshots of a machine, kept by its driver (see Driver: disk and memory while
 * running, disk only while halted). Every operation holds the machine lock, so two
 * never interleave. A Vmfile with several machines needs -m: none is picked silently.
 */
import { UserError } from '../errors.js';
import { syncGuestClock } from '../guest/communicator.js';
import { waitForSshGreeting } from '../ssh/banner.js';
import { withRunningMachine } from '../guest/running.js';
import type { ServiceContext } from '../instance/context.js';
import { inspectIn, isRunning, type Instance } from '../instance/inspect.js';
import { selectOne } from '../instance/select.js';
import { refuseIfUnusable } from '../lifecycle/start.js';
import { refuseLiveFs } from '../lifecycle/saved-state.js';
import { SUSPEND_SNAPSHOT } from '../store/layout.js';
import { withMachine } from '../instance/locked.js';
import { inPhase } from '../ui/reporter.js';
import type { Project } from '../vmfile/config.js';

const NAME = /^[A-Za-z][A-Za-z0-9._-]{0,63}$/;
/** How long a restored guest's SSH server may take to greet before SSH itself is tried. */
const SSH_ANSWER_MS = 10_000;
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
  return (await machine.driver.listSnapshots()).map((s) => ({ name: s.name, date: new Date(s.date * 1000).toISOString(), size: s.memoryBytes, memory: s.memoryBytes > 0 }));
}

export async function snapshotSave(target: SnapshotTarget & { name: string }, context: ServiceContext): Promise<{ machine: string; memory: boolean; seconds: number }> {
  checkSnapshotName(target.name);
  return locked(target, 'snapshot save', async (current) => {
    refuseSuspended(current, 'save a snapshot of');
    const online = current.status === 'running';
    if (online) refuseLiveFs(current, 'save a snapshot with memory');
    const started = performance.now();
    const { memory } = await inPhase(context.reporter, current.name, `Saving snapshot "${target.name}" (${online ? 'disk and memory' : 'disk only, machine halted'})`, () =>
      current.driver.saveSnapshot(target.name),
    );
    return { machine: current.name, memory, seconds: (performance.now() - started) / 1000 };
  });
}

export async function snapshotRestore(target: SnapshotTarget & { name: string }, context: ServiceContext): Promise<{ machine: string; memory: boolean; seconds: number }> {
  return locked(target, 'snapshot restore', async (current) => {
    refuseSuspended(current, 'restore a snapshot of');
    const started = performance.now();
    const online = current.status === 'running';
    const { memory } = await inPhase(context.reporter, current.name, `Restoring snapshot "${target.name}" (${online ? 'disk and memory' : 'disk only, machine halted'})`, () =>
      current.driver.applySnapshot(target.name),
    );
    const seconds = (performance.now() - started) / 1000;
    if (memory) {
      // The guest comes back with the wall-clock time of the snapshot: set through the
      // guest agent while SSH's greeting shows the server answers (no key exchange);
      // without an agent, over SSH.
      const phase = context.reporter.phase(current.name, 'Setting the guest clock');
      try {
        const port = current.state?.sshPort;
        const [agent, answers] = port === undefined ? [false, false] : await Promise.all([current.driver.setGuestClock(), waitForSshGreeting(port, Date.now() + SSH_ANSWER_MS)]);
        if (agent && answers) {
          phase.done('through the guest agent; SSH answers');
        } else {
          await withRunningMachine(target.project, current.name, (_machine, session) => syncGuestClock(session), isRunning(current) ? { instance: current } : {});
          phase.done('over SSH');
        }
      } catch (error) {
        phase.fail();
        throw error;
      }
    }
    return { machine: current.name, memory, seconds };
  });
}

export async function snapshotDelete(target: SnapshotTarget & { name: string }, context: ServiceContext): Promise<void> {
  await locked(target, 'snapshot delete', (current) => inPhase(context.reporter, current.name, `Deleting snapshot "${target.name}"`, () => current.driver.deleteSnapshot(target.name)));
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
  const pushed = (await machine.driver.listSnapshots()).filter((s) => s.name.startsWith(PUSH_PREFIX));
  const newest = pushed.sort((a, b) => a.date - b.date || a.name.localeCompare(b.name)).at(-1);
  if (newest === undefined) throw new UserError(`machine "${machine.name}" has no pushed snapshot`, { hint: 'vmfile snapshot push saves one' });
  const named = { ...target, machine: machine.name };
  await snapshotRestore({ ...named, name: newest.name }, context);
  if (!target.keep) await snapshotDelete({ ...named, name: newest.name }, context);
  return newest.name;
}

/** The target machine, which must exist (a broken one is refused with its reason). */
async function created(target: SnapshotTarget): Promise<Instance> {
  return locked(target, 'snapshot list', async (current) => current, false);
}

/** Runs `fn` on the target machine, inspected once under its lock; it must exist (a broken one is refused with its reason). */
async function locked<T>(target: SnapshotTarget, operation: string, fn: (current: Instance) => Promise<T>, hold = true): Promise<T> {
  const machine = selectOne(target.project, target.machine, { command: 'vmfile snapshot ... -m MACHINE', usePrimary: false });
  const work = async (current: Instance): Promise<T> => {
    refuseIfUnusable(current);
    if (current.status === 'not created') throw new UserError(`machine "${machine.name}" is not created`, { hint: 'create it with: vmup' });
    return fn(current);
  };
  return hold ? withMachine(target.project, machine.name, operation, work) : work(await inspectIn(target.project, machine.name));
}

function refuseSuspended(current: Instance, what: string): void {
  if (current.status === 'suspended') {
    throw new UserError(`machine "${current.name}" is suspended; cannot ${what} it now`, { hint: 'resume it first: vmfile resume' });
  }
}

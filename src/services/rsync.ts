/**
 * vmfile rsync: copy rsync folders into running machines again; with --watch, again
 * whenever something under those folders changes (Vagrant's rsync-auto), until Ctrl-C.
 */
import { watch, type FSWatcher } from 'node:fs';
import { sep } from 'node:path';
import { UserError } from '../errors.js';
import type { PlannedFolder } from '../folders/plan.js';
import { rsyncFolders } from '../folders/sync.js';
import { openSshOptions } from '../guest/openssh.js';
import { withRunningMachine } from '../guest/running.js';
import type { ServiceContext } from '../instance/context.js';
import { forEachMachine } from '../instance/fanout.js';
import { inspectIn } from '../instance/inspect.js';
import { selectMachines } from '../instance/select.js';
import { PROJECT_STATE_DIR } from '../store/layout.js';
import { inPhase } from '../ui/reporter.js';
import type { MachineConfig, Project } from '../vmfile/config.js';
import { counted } from '../ui/words.js';

export async function rsync(options: { project: Project; machines?: readonly string[]; watch?: boolean }, context: ServiceContext): Promise<void> {
  const machines = selectMachines(options.project, options.machines);
  await forEachMachine(machines, (machine) => syncMachine(options.project, machine, context), {
    parallel: false,
    succeeded: 'synced',
    retry: 'fix the failures above, then run vmfile rsync again',
  });
  if (options.watch === true) await watchFolders(options.project, machines, context);
}

async function syncMachine(project: Project, machine: MachineConfig, context: ServiceContext): Promise<void> {
  await withRunningMachine(
    project,
    machine.name,
    async ({ state, paths, driver }, session) => {
      const folders = currentRsyncFolders(state.folders ?? [], machine);
      if (folders.length === 0) {
        context.reporter.info(machine.name, 'has no rsync folders');
        return;
      }
      await inPhase(context.reporter, machine.name, `Syncing ${folders.map((f) => f.guest).join(', ')}`, (phase) =>
        rsyncFolders(session, paths, openSshOptions(paths, state, state.sshPort, driver.sshHop()), machine.name, state.user, folders, {
          notice: (text) => context.reporter.notice(text),
          progress: (text) => phase.progress(text),
        }),
      );
    },
    { hint: 'vmup syncs folders as it boots' },
  );
}

/**
 * The rsync folders set up at boot, with what to leave out taken from the Vmfile as it
 * is now: an edited exclude list or gitignore setting applies at the next sync, no
 * reload needed (where a folder goes, and how, changes only with a reload).
 */
export function currentRsyncFolders(booted: readonly PlannedFolder[], machine: MachineConfig): PlannedFolder[] {
  return booted
    .filter((folder) => folder.type === 'rsync')
    .map((folder) => {
      const now = machine.folders.find((spec) => spec.guest === folder.guest && spec.host === folder.host);
      return now === undefined ? folder : { ...folder, exclude: now.exclude, gitignore: now.gitignore === true };
    });
}

/** A change under .vmfile/ (QEMU writes the console log there) or .git/ is no reason to sync. */
export function worthSyncing(changed: string | null): boolean {
  if (changed === null) return true;
  const parts = changed.split(sep);
  return !parts.includes(PROJECT_STATE_DIR) && !parts.includes('.git');
}

/** Re-syncs a machine half a second after the last change in one of its folders; runs until vmfile is interrupted. */
async function watchFolders(project: Project, machines: readonly MachineConfig[], context: ServiceContext): Promise<never> {
  const watchers: FSWatcher[] = [];
  for (const machine of machines) {
    const current = await inspectIn(project, machine.name);
    const folders = (current.state?.folders ?? []).filter((folder) => folder.type === 'rsync');
    let timer: NodeJS.Timeout | undefined;
    let running = Promise.resolve();
    const schedule = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        running = running.then(() =>
          syncMachine(project, machine, context).catch((error: unknown) => context.reporter.notice(`machine "${machine.name}": ${(error as Error).message}; still watching`)),
        );
      }, 500);
    };
    for (const folder of folders) {
      watchers.push(watch(folder.host, { recursive: true }, (_event, name) => {
        if (worthSyncing(name === null ? null : String(name))) schedule();
      }));
    }
  }
  if (watchers.length === 0) throw new UserError('there are no rsync folders to watch', { hint: "folders of type 'rsync' are watched; live folders (virtiofs, 9p) need no syncing" });
  context.reporter.notice(`watching ${counted(watchers.length, 'folder')} for changes; Ctrl-C stops`);
  return new Promise<never>(() => {});
}

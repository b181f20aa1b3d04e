/** vmfile rsync: copy rsync folders into running machines again. */
import { rsyncFolders } from '../folders/sync.js';
import { openSshOptions } from '../guest/communicator.js';
import { withRunningMachine } from '../guest/running.js';
import type { ServiceContext } from '../instance/context.js';
import { forEachMachine } from '../instance/fanout.js';
import { selectMachines } from '../instance/select.js';
import { inPhase } from '../ui/reporter.js';
import type { Project } from '../vmfile/config.js';

export async function rsync(options: { project: Project; machines?: readonly string[] }, context: ServiceContext): Promise<void> {
  await forEachMachine(
    selectMachines(options.project, options.machines),
    (machine) =>
      withRunningMachine(
        options.project,
        machine.name,
        async ({ state, paths }, session) => {
          const folders = (state.folders ?? []).filter((folder) => folder.type === 'rsync');
          if (folders.length === 0) {
            context.reporter.info(machine.name, 'has no rsync folders');
            return;
          }
          await inPhase(context.reporter, machine.name, `Syncing ${folders.map((f) => f.guest).join(', ')}`, () =>
            rsyncFolders(session, paths, openSshOptions(paths, state, state.sshPort), machine.name, state.user, folders),
          );
        },
        { hint: 'vmup syncs folders as it boots' },
      ),
    { parallel: false, succeeded: 'synced', retry: 'fix the failures above, then run vmfile rsync again' },
  );
}

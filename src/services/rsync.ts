/** vmfile rsync: copy rsync folders into running machines again. */
import { UserError } from '../errors.js';
import { rsyncFolders } from '../folders/sync.js';
import { SshSession } from '../ssh/client.js';
import type { Project } from '../vmfile/config.js';
import { openSshOptions, sshTargetFor } from './communicator.js';
import { machineStatus, selectMachines, type ServiceContext } from './machine.js';

export async function rsync(options: { project: Project; machines?: readonly string[] }, context: ServiceContext): Promise<void> {
  for (const machine of selectMachines(options.project, options.machines)) {
    const current = await machineStatus(options.project.dir, machine.name);
    const state = current.state;
    if (current.status !== 'running' || state?.sshPort === undefined) {
      throw new UserError(`machine "${machine.name}" is not running`, { hint: 'vmup syncs folders as it boots' });
    }
    const folders = (state.folders ?? []).filter((folder) => folder.type === 'rsync');
    if (folders.length === 0) {
      context.reporter.info(machine.name, 'has no rsync folders');
      continue;
    }
    const port = state.sshPort;
    const phase = context.reporter.phase(machine.name, `Syncing ${folders.map((f) => f.guest).join(', ')}`);
    const session = await SshSession.connect(await sshTargetFor(current.paths, state, port));
    try {
      await rsyncFolders(session, current.paths, openSshOptions(current.paths, state, port), machine.name, state.user, folders);
      phase.done();
    } catch (error) {
      phase.fail();
      throw error;
    } finally {
      session.close();
    }
  }
}

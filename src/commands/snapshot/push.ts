import { VmfileCommand } from '../../cli/command.js';
import { machineFlag, machineOf } from '../../cli/snapshot-command.js';

export default class SnapshotPush extends VmfileCommand {
  static override summary = 'Save a snapshot on the stack (restore it with snapshot pop)';
  static override flags = machineFlag;

  async run(): Promise<void> {
    const { snapshotPush } = await import('../../services/snapshot.js');
    const { flags } = await this.parse(SnapshotPush);
    this.log(await snapshotPush({ project: await this.project(flags), ...machineOf(flags) }, this.context()));
  }
}

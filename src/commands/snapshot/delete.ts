import { Args } from '@oclif/core';
import { VmfileCommand } from '../../cli/command.js';
import { machineFlag, machineOf } from '../../cli/snapshot-command.js';

export default class SnapshotDelete extends VmfileCommand {
  static override summary = 'Delete a snapshot';
  static override args = { name: Args.string({ required: true, description: 'snapshot name' }) };
  static override flags = machineFlag;

  async run(): Promise<void> {
    const { snapshotDelete } = await import('../../services/snapshot.js');
    const { flags, args } = await this.parse(SnapshotDelete);
    await snapshotDelete({ project: await this.project(flags), name: args.name, ...machineOf(flags) }, this.context());
  }
}

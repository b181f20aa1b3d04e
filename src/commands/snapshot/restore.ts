import { Args } from '@oclif/core';
import { VmfileCommand } from '../../cli/command.js';
import { machineFlag, machineOf } from '../../cli/snapshot-command.js';

export default class SnapshotRestore extends VmfileCommand {
  static override summary = 'Restore a snapshot (a running machine continues from its saved memory)';
  static override args = { name: Args.string({ required: true, description: 'snapshot name' }) };
  static override flags = machineFlag;

  async run(): Promise<void> {
    const { snapshotRestore } = await import('../../services/snapshot.js');
    const { flags, args } = await this.parse(SnapshotRestore);
    await snapshotRestore({ project: await this.project(flags), name: args.name, ...machineOf(flags) }, this.context());
  }
}

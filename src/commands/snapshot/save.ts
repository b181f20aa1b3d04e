import { Args } from '@oclif/core';
import { VmfileCommand } from '../../cli/command.js';
import { machineFlag, machineOf } from '../../cli/snapshot-command.js';

export default class SnapshotSave extends VmfileCommand {
  static override summary = 'Save a snapshot: disk and memory when running, disk only when halted';
  static override args = { name: Args.string({ required: true, description: 'snapshot name' }) };
  static override flags = machineFlag;

  async run(): Promise<void> {
    const { snapshotSave } = await import('../../services/snapshot.js');
    const { flags, args } = await this.parse(SnapshotSave);
    await snapshotSave({ project: await this.project(flags), name: args.name, ...machineOf(flags) }, this.context());
  }
}

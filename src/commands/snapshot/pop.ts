import { Flags } from '@oclif/core';
import { VmfileCommand } from '../../cli/command.js';
import { machineFlag, machineOf } from '../../cli/snapshot-command.js';

export default class SnapshotPop extends VmfileCommand {
  static override summary = 'Restore the newest pushed snapshot and delete it';
  static override flags = { ...machineFlag, 'no-delete': Flags.boolean({ description: 'keep the snapshot after restoring it' }) };

  async run(): Promise<void> {
    const { snapshotPop } = await import('../../services/snapshot.js');
    const { flags } = await this.parse(SnapshotPop);
    this.log(await snapshotPop({ project: await this.project(flags), keep: flags['no-delete'], ...machineOf(flags) }, this.context()));
  }
}

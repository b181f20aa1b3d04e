import { Flags } from '@oclif/core';
import { VmfileCommand } from '../../cli/command.js';
import { machineFlag, machineOf } from '../../cli/snapshot-command.js';
import { formatSize } from '../../vmfile/size.js';

export default class SnapshotList extends VmfileCommand {
  static override summary = 'List snapshots: name, date, saved memory size';
  static override flags = { ...machineFlag, json: Flags.boolean({ description: 'print JSON' }) };

  async run(): Promise<void> {
    const { snapshotList } = await import('../../services/snapshot.js');
    const { flags } = await this.parse(SnapshotList);
    const snapshots = await snapshotList({ project: await this.project(flags), ...machineOf(flags) });
    if (flags.json) {
      this.log(JSON.stringify(snapshots, null, 2));
      return;
    }
    if (snapshots.length === 0) this.log('no snapshots');
    for (const s of snapshots) this.log(`${s.name.padEnd(28)} ${s.date}  ${s.memory ? `memory ${formatSize(s.size)}` : 'disk only'}`);
  }
}

import { Flags } from '@oclif/core';
import { VmfileCommand } from '../../cli/command.js';

export default class LockExport extends VmfileCommand {
  static override summary = 'Write every package Vmfile.lock pins into one file, for vmfile lock import on another host';
  static override flags = {
    output: Flags.string({ char: 'o', required: true, description: 'file to write, e.g. packages.tar' }),
    json: Flags.boolean({ description: 'print the result as JSON' }),
  };

  async run(): Promise<void> {
    const { exportLockedPackages } = await import('../../services/lock-packages.js');
    const { flags } = await this.parse(LockExport);
    const result = await exportLockedPackages({ project: await this.project(flags), output: flags.output }, this.context());
    if (flags.json) this.log(JSON.stringify(result, null, 2));
    else this.log(`wrote ${result.output}: ${result.packages} packages; on another host: vmfile lock import ${result.output}`);
  }
}

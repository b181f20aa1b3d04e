import { Args, Flags } from '@oclif/core';
import { VmfileCommand } from '../../cli/command.js';

export default class LockImport extends VmfileCommand {
  static override summary = 'Check a file written by vmfile lock export and add its packages to the package store';
  static override args = { file: Args.string({ required: true, description: 'the file vmfile lock export wrote' }) };
  static override flags = { json: Flags.boolean({ description: 'print the result as JSON' }) };

  async run(): Promise<void> {
    const { importPackages } = await import('../../services/lock-packages.js');
    const { args, flags } = await this.parse(LockImport);
    const result = await importPackages({ file: args.file }, this.context());
    if (flags.json) this.log(JSON.stringify(result, null, 2));
    else this.log(`${result.file}: ${result.packages} packages checked, ${result.added} added to the package store`);
  }
}

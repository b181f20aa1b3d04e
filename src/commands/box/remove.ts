import { Args, Flags } from '@oclif/core';
import { VmfileCommand } from '../../cli/command.js';

export default class BoxRemove extends VmfileCommand {
  static override summary = 'Remove a box (all its versions, or one with --version)';
  static override args = { name: Args.string({ required: true }) };
  static override flags = {
    version: Flags.string({ description: 'remove only this version' }),
    force: Flags.boolean({ description: 'remove it even if machines were made from it (their disks stop working)' }),
  };

  async run(): Promise<void> {
    const { removeBox } = await import('../../services/box.js');
    const { flags, args } = await this.parse(BoxRemove);
    const removed = await removeBox(this.context().home, args.name, flags.version, { force: flags.force });
    for (const box of removed) this.log(`removed box ${box.name} ${box.version}`);
  }
}

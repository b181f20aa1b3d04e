import { Args, Flags } from '@oclif/core';
import { VmfileCommand } from '../cli/command.js';

export default class Rsync extends VmfileCommand {
  static override summary = 'Copy rsync folders into the running machine(s) again';
  static override strict = false;
  static override args = { machines: Args.string({ description: 'machine names (default: all)' }) };
  static override flags = { watch: Flags.boolean({ char: 'w', description: 'keep watching the folders and sync again on every change (Ctrl-C stops)' }) };

  async run(): Promise<void> {
    const { rsync } = await import('../services/rsync.js');
    const { flags, argv } = await this.parse(Rsync);
    await rsync({ project: await this.project(flags), machines: argv.map(String), watch: flags.watch }, this.context());
  }
}

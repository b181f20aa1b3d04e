import { Args } from '@oclif/core';
import { VmfileCommand } from '../cli/command.js';

export default class Rsync extends VmfileCommand {
  static override summary = 'Copy rsync folders into the running machine(s) again';
  static override strict = false;
  static override args = { machines: Args.string({ description: 'machine names (default: all)' }) };

  async run(): Promise<void> {
    const { rsync } = await import('../services/rsync.js');
    const { flags, argv } = await this.parse(Rsync);
    await rsync({ project: await this.project(flags), machines: argv.map(String) }, this.context());
  }
}

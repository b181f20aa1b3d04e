import { Args } from '@oclif/core';
import { VmfileCommand } from '../cli/command.js';

export default class Suspend extends VmfileCommand {
  static override summary = 'Save the running machine(s) memory to disk and stop QEMU';
  static override strict = false;
  static override args = { machines: Args.string({ description: 'machine names (default: all)' }) };

  async run(): Promise<void> {
    const { suspend } = await import('../services/suspend.js');
    const { flags, argv } = await this.parse(Suspend);
    await suspend({ project: await this.project(flags), machines: argv.map(String) }, this.context());
  }
}

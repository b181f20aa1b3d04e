import { Args } from '@oclif/core';
import { VmfileCommand } from '../cli/command.js';

export default class Resume extends VmfileCommand {
  static override summary = 'Continue suspended machine(s) exactly where they stopped';
  static override strict = false;
  static override args = { machines: Args.string({ description: 'machine names (default: all)' }) };

  async run(): Promise<void> {
    const { resume } = await import('../services/suspend.js');
    const { flags, argv } = await this.parse(Resume);
    await resume({ project: await this.project(flags), machines: argv.map(String) }, this.context());
  }
}

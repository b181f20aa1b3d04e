import { Args, Flags } from '@oclif/core';
import { VmfileCommand } from '../cli/command.js';

export default class Provision extends VmfileCommand {
  static override summary = 'Run provisioning steps again on the running machine(s)';
  static override strict = false;
  static override args = { machines: Args.string({ description: 'machine names (default: all)' }) };
  static override flags = {
    step: Flags.string({ description: 'run only this step (by name; repeatable), even a "never" step', multiple: true }),
  };

  async run(): Promise<void> {
    const { provision } = await import('../services/provision.js');
    const { flags, argv } = await this.parse(Provision);
    await provision({ project: await this.project(flags), machines: argv.map(String), ...(flags.step === undefined ? {} : { steps: flags.step }) }, this.context());
  }
}

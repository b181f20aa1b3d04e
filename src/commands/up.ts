import { Args, Flags } from '@oclif/core';
import { VmfileCommand } from '../cli/command.js';

export default class Up extends VmfileCommand {
  static override summary = 'Create and boot the machine(s), then provision them';
  static override strict = false;
  static override args = { machines: Args.string({ description: 'machine names (default: all)' }) };
  static override flags = {
    provision: Flags.boolean({ description: 'run provisioning steps even if they ran before (not "never" steps)', exclusive: ['no-provision'] }),
    'no-provision': Flags.boolean({ description: 'skip provisioning' }),
    json: Flags.boolean({ description: 'print the result as JSON' }),
  };

  async run(): Promise<void> {
    const { up } = await import('../services/up.js');
    const { flags, argv } = await this.parse(Up);
    const results = await up(
      {
        project: await this.project(flags),
        machines: argv.map(String),
        provision: flags['no-provision'] ? 'none' : flags.provision ? 'all' : 'boot',
      },
      this.context(),
    );
    if (flags.json) this.log(JSON.stringify(results, null, 2));
  }
}

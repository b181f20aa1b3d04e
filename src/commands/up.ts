import { Args, Flags } from '@oclif/core';
import { VmfileCommand } from '../cli/command.js';
import { provisionFlags, provisionMode } from '../cli/provision-flags.js';

export default class Up extends VmfileCommand {
  static override summary = 'Create and boot the machine(s), then provision them';
  static override strict = false;
  static override args = { machines: Args.string({ description: 'machine names (default: all)' }) };
  static override flags = {
    ...provisionFlags,
    'no-cache': Flags.boolean({ description: 'a new machine runs every step itself: no provisioning layer is used or made' }),
    json: Flags.boolean({ description: 'print the result as JSON' }),
  };

  async run(): Promise<void> {
    const { up } = await import('../services/up.js');
    const { flags, argv } = await this.parse(Up);
    const results = await up(
      {
        project: await this.project(flags),
        machines: argv.map(String),
        provision: provisionMode(flags),
        noCache: flags['no-cache'],
      },
      this.context(),
    );
    if (flags.json) this.log(JSON.stringify(results, null, 2));
  }
}

import { Args, Flags } from '@oclif/core';
import { VmfileCommand } from '../cli/command.js';
import { provisionFlags, provisionMode } from '../cli/provision-flags.js';

export default class Reload extends VmfileCommand {
  static override summary = 'Halt cleanly and boot again, applying changed CPUs and memory';
  static override strict = false;
  static override args = { machines: Args.string({ description: 'machine names (default: all)' }) };
  static override flags = {
    ...provisionFlags,
    timeout: Flags.integer({ description: 'seconds to wait for a clean shutdown before forcing', default: 60, min: 1 }),
  };

  async run(): Promise<void> {
    const { reload } = await import('../services/reload.js');
    const { flags, argv } = await this.parse(Reload);
    await reload(
      {
        project: await this.project(flags),
        machines: argv.map(String),
        provision: provisionMode(flags),
        timeout: flags.timeout,
      },
      this.context(),
    );
  }
}

import { Args, Flags } from '@oclif/core';
import { VmfileCommand } from '../cli/command.js';

export default class Halt extends VmfileCommand {
  static override summary = 'Shut the machine(s) down cleanly (ACPI power button), forcing after a timeout';
  static override strict = false;
  static override args = { machines: Args.string({ description: 'machine names (default: all)' }) };
  static override flags = {
    force: Flags.boolean({ char: 'f', description: 'power off at once, without asking the guest' }),
    timeout: Flags.integer({ description: 'seconds to wait for a clean shutdown before forcing', default: 60, min: 1 }),
    json: Flags.boolean({ description: 'print the result as JSON: [{ machine, outcome, seconds }]' }),
  };

  async run(): Promise<void> {
    const { halt } = await import('../services/halt.js');
    const { flags, argv } = await this.parse(Halt);
    const results = await halt({ project: await this.project(flags), machines: argv.map(String), force: flags.force, timeout: flags.timeout }, this.context());
    if (flags.json) this.log(JSON.stringify(results, null, 2));
  }
}

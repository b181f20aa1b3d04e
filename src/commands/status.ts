import { Args, Flags } from '@oclif/core';
import { VmfileCommand } from '../cli/command.js';

export default class Status extends VmfileCommand {
  static override summary = 'Show whether each machine is not created, running, suspended, halted, broken or unreachable';
  static override strict = false;
  static override args = { machines: Args.string({ description: 'machine names (default: all)' }) };
  static override flags = { json: Flags.boolean({ description: 'print JSON' }) };

  async run(): Promise<void> {
    const [{ status }, { statusLines }] = await Promise.all([import('../services/status.js'), import('../cli/status-lines.js')]);
    const { flags, argv } = await this.parse(Status);
    const entries = await status({ project: await this.project(flags), machines: argv.map(String) });
    if (flags.json) this.log(JSON.stringify(entries, null, 2));
    else for (const line of statusLines(entries)) this.log(line);
  }
}

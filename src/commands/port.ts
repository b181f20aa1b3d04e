import { Args, Flags } from '@oclif/core';
import { VmfileCommand } from '../cli/command.js';

export default class Port extends VmfileCommand {
  static override summary = 'List the forwarded ports of running machine(s)';
  static override strict = false;
  static override args = { machines: Args.string({ description: 'machine names (default: all)' }) };
  static override flags = { json: Flags.boolean({ description: 'print JSON' }) };

  async run(): Promise<void> {
    const { status } = await import('../services/status.js');
    const { flags, argv } = await this.parse(Port);
    const entries = await status({ project: await this.project(flags), machines: argv.map(String) });
    if (flags.json) {
      this.log(JSON.stringify(Object.fromEntries(entries.map((entry) => [entry.machine, entry.ports])), null, 2));
      return;
    }
    for (const entry of entries) {
      if (entry.ports.length === 0) this.log(`${entry.machine}: ${entry.status}, no forwarded ports`);
      for (const port of entry.ports) this.log(`${entry.machine.padEnd(12)} ${`${port.guest}/${port.protocol}`.padEnd(10)} -> ${port.hostIp}:${port.host}`);
    }
  }
}

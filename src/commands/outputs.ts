import { Args, Flags } from '@oclif/core';
import { VmfileCommand } from '../cli/command.js';

export default class Outputs extends VmfileCommand {
  static override summary = "List the digests of the provisioning steps' declared outputs, as Vmfile.lock records them from the last run";
  static override strict = false;
  static override args = { machines: Args.string({ description: 'machine names (default: all)' }) };
  static override flags = { json: Flags.boolean({ description: 'print JSON' }) };

  async run(): Promise<void> {
    const { outputs } = await import('../services/outputs.js');
    const { flags, argv } = await this.parse(Outputs);
    const entries = await outputs({ project: await this.project(flags), machines: argv.map(String) });
    if (flags.json) {
      this.log(JSON.stringify(entries, null, 2));
      return;
    }
    if (entries.length === 0) this.log('no step declares outputs (a step lists them in outputs: ["results/*.csv", ...])');
    for (const entry of entries) {
      this.log(entry.sha256 === undefined ? `${entry.machine.padEnd(12)} ${`"${entry.step}"`.padEnd(20)} ${entry.pattern ?? ''}: not recorded yet (the step has not run since)` : `${entry.machine.padEnd(12)} ${`"${entry.step}"`.padEnd(20)} ${entry.sha256}  ${entry.path ?? ''}`);
    }
  }
}

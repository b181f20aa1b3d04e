import { Args, Flags } from '@oclif/core';
import { VmfileCommand } from '../cli/command.js';
import { UserError } from '../errors.js';

export default class Destroy extends VmfileCommand {
  static override summary = 'Stop the machine(s) and delete their disks and state; boxes are kept';
  static override strict = false;
  static override args = { machines: Args.string({ description: 'machine names (default: all)' }) };
  static override flags = { force: Flags.boolean({ char: 'f', description: 'do not ask for confirmation' }) };

  async run(): Promise<void> {
    const { destroy } = await import('../services/destroy.js');
    const { flags, argv } = await this.parse(Destroy);
    const project = await this.project(flags);
    if (!flags.force) {
      if (!process.stdin.isTTY) throw new UserError('destroy deletes the machine disk; confirm with --force (-f) when not on a terminal');
      const { createInterface } = await import('node:readline/promises');
      const prompt = createInterface({ input: process.stdin, output: process.stderr });
      const answer = await prompt.question(`Destroy ${argv.length === 0 ? 'all machines' : argv.join(', ')} of ${project.vmfilePath}? Their disks are deleted. [y/N] `);
      prompt.close();
      if (!/^y(es)?$/i.test(answer.trim())) throw new UserError('not destroyed');
    }
    await destroy({ project, machines: argv.map(String) }, this.context());
  }
}

import { Args, Flags } from '@oclif/core';
import { VmfileCommand } from '../cli/command.js';

export default class Ssh extends VmfileCommand {
  static override summary = 'Open a shell in the machine, or run one command (-c) and return its exit code';
  static override args = { machine: Args.string({ description: 'machine name (needed when the Vmfile has several)' }) };
  static override flags = {
    command: Flags.string({ char: 'c', description: 'run this command instead of a shell' }),
  };

  async run(): Promise<void> {
    const { ssh } = await import('../services/ssh.js');
    const { flags, args } = await this.parse(Ssh);
    const code = await ssh({
      project: await this.project(flags),
      ...(args.machine === undefined ? {} : { machine: args.machine }),
      ...(flags.command === undefined ? {} : { command: flags.command }),
    });
    process.exitCode = code;
  }
}

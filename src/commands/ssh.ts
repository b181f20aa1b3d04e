import { Args, Flags } from '@oclif/core';
import { VmfileCommand } from '../cli/command.js';

export default class Ssh extends VmfileCommand {
  static override summary = 'Open a shell in the machine, or run one command (-c) and return its exit code';
  static override description = 'Arguments after -- go to ssh itself, e.g. vmssh -- -L 8080:localhost:80 (vmfile\'s own options, such as the pinned host key, come first and win).';
  static override examples = ['vmssh', 'vmssh web -c "uptime"', 'vmssh -- -L 8080:localhost:80 -N'];
  static override args = { machine: Args.string({ description: 'machine name (needed when the Vmfile has several)' }) };
  static override flags = {
    command: Flags.string({ char: 'c', description: 'run this command instead of a shell' }),
  };

  async run(): Promise<void> {
    const { ssh } = await import('../services/ssh.js');
    // Everything after -- is for ssh, not for vmfile's parser.
    const dash = this.argv.indexOf('--');
    const sshArgs = dash === -1 ? [] : this.argv.slice(dash + 1);
    const { flags, args } = await this.parse(Ssh, dash === -1 ? this.argv : this.argv.slice(0, dash));
    const code = await ssh({
      sshArgs,
      project: await this.project(flags),
      ...(args.machine === undefined ? {} : { machine: args.machine }),
      ...(flags.command === undefined ? {} : { command: flags.command }),
    });
    process.exitCode = code;
  }
}

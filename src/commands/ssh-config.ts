import { Args } from '@oclif/core';
import { VmfileCommand } from '../cli/command.js';

export default class SshConfig extends VmfileCommand {
  static override summary = 'Print an OpenSSH config for the running machine(s): ssh -F FILE NAME';
  static override strict = false;
  static override args = { machines: Args.string({ description: 'machine names (default: all running)' }) };

  async run(): Promise<void> {
    const { sshConfig } = await import('../services/ssh.js');
    const { flags, argv } = await this.parse(SshConfig);
    process.stdout.write(await sshConfig({ project: await this.project(flags), machines: argv.map(String) }));
  }
}

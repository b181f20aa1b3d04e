import { Args } from '@oclif/core';
import { VmfileCommand } from '../cli/command.js';
import { sshConfig } from '../services/ssh.js';

export default class SshConfig extends VmfileCommand {
  static override summary = 'Print an OpenSSH config for the running machine(s): ssh -F FILE NAME';
  static override strict = false;
  static override args = { machines: Args.string({ description: 'machine names (default: all running)' }) };

  async run(): Promise<void> {
    const { flags, argv } = await this.parse(SshConfig);
    process.stdout.write(await sshConfig({ project: await this.project(flags), machines: argv.map(String) }));
  }
}

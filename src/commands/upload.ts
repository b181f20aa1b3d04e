import { Args, Flags } from '@oclif/core';
import { VmfileCommand } from '../cli/command.js';

export default class Upload extends VmfileCommand {
  static override summary = 'Copy a file or directory from this host into the machine';
  static override args = {
    source: Args.string({ required: true, description: 'path on this host' }),
    destination: Args.string({ required: true, description: 'path in the guest (relative: to the login user\'s home)' }),
  };
  static override flags = { machine: Flags.string({ char: 'm', description: 'machine name (needed when the Vmfile has several)' }) };

  async run(): Promise<void> {
    const { copy } = await import('../services/ssh.js');
    const { flags, args } = await this.parse(Upload);
    await copy({ project: await this.project(flags), direction: 'upload', source: args.source, destination: args.destination, ...(flags.machine === undefined ? {} : { machine: flags.machine }) });
  }
}

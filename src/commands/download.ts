import { Args, Flags } from '@oclif/core';
import { VmfileCommand } from '../cli/command.js';

export default class Download extends VmfileCommand {
  static override summary = 'Copy a file or directory from the machine to this host';
  static override args = {
    source: Args.string({ required: true, description: 'path in the guest (relative: to the login user\'s home)' }),
    destination: Args.string({ required: true, description: 'path on this host' }),
  };
  static override flags = { machine: Flags.string({ char: 'm', description: 'machine name (needed when the Vmfile has several)' }) };

  async run(): Promise<void> {
    const { copy } = await import('../services/ssh.js');
    const { flags, args } = await this.parse(Download);
    await copy({ project: await this.project(flags), direction: 'download', source: args.source, destination: args.destination, ...(flags.machine === undefined ? {} : { machine: flags.machine }) });
  }
}

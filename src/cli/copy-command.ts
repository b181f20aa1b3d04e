/** vmfile upload and vmfile download: one command shape, two directions. */
import { Args, Flags } from '@oclif/core';
import { VmfileCommand } from './command.js';

export function copyCommand(direction: 'upload' | 'download'): typeof VmfileCommand {
  const host = 'path on this host';
  const guest = "path in the guest (relative: to the login user's home)";
  return class Copy extends VmfileCommand {
    static override summary = direction === 'upload' ? 'Copy a file or directory from this host into the machine' : 'Copy a file or directory from the machine to this host';
    static override args = {
      source: Args.string({ required: true, description: direction === 'upload' ? host : guest }),
      destination: Args.string({ required: true, description: direction === 'upload' ? guest : host }),
    };
    static override flags = { machine: Flags.string({ char: 'm', description: 'machine name (needed when the Vmfile has several)' }) };

    async run(): Promise<void> {
      const { copy } = await import('../services/ssh.js');
      const { flags, args } = await this.parse(Copy);
      await copy({ project: await this.project(flags), direction, source: args.source, destination: args.destination, ...(flags.machine === undefined ? {} : { machine: flags.machine }) });
    }
  };
}

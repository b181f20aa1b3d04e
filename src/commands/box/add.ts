import { Args, Flags } from '@oclif/core';
import { VmfileCommand } from '../../cli/command.js';

export default class BoxAdd extends VmfileCommand {
  static override summary = 'Import a qcow2 cloud image or a Vagrant libvirt .box as a box';
  static override args = {
    name: Args.string({ required: true, description: 'name to give the box' }),
    file: Args.string({ required: true, description: 'qcow2 image or .box file' }),
  };
  static override flags = {
    checksum: Flags.string({ description: 'expected digest of FILE: sha256:HEX (refused on mismatch)' }),
    version: Flags.string({ description: 'version to store it as (default: today, YYYY.M.D)' }),
  };

  async run(): Promise<void> {
    const { addBox } = await import('../../services/box.js');
    const { flags, args } = await this.parse(BoxAdd);
    const box = await addBox({
      home: this.context().home,
      reporter: this.context().reporter,
      name: args.name,
      file: args.file,
      ...(flags.checksum === undefined ? {} : { checksum: flags.checksum }),
      ...(flags.version === undefined ? {} : { version: flags.version }),
    });
    this.log(`added box ${box.metadata.name} ${box.metadata.version} (sha256:${box.metadata.disk.sha256})`);
  }
}

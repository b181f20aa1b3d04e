import { Args, Flags } from '@oclif/core';
import { VmfileCommand } from '../../cli/command.js';

export default class BoxAdd extends VmfileCommand {
  static override summary = 'Add a box: a qcow2 cloud image, a Vagrant libvirt .box or a vmfile box file, from a file or a URL, or a Vagrant catalog URL';
  static override args = {
    name: Args.string({ required: true, description: 'name to give the box ("org/name" for a catalog: the name it gives)' }),
    source: Args.string({ required: true, description: 'qcow2 image or .box file, or an http(s) URL of one or of a Vagrant catalog (JSON)' }),
  };
  static override flags = {
    checksum: Flags.string({ description: 'expected digest of the file: sha256:HEX (refused on mismatch; a catalog gives its own)' }),
    version: Flags.string({ description: 'version to store it as (default: today, YYYY.M.D); for a catalog, the version to install (default: the newest)' }),
  };

  async run(): Promise<void> {
    const { addBox } = await import('../../services/box.js');
    const { flags, args } = await this.parse(BoxAdd);
    const box = await addBox({
      home: this.context().home,
      reporter: this.context().reporter,
      name: args.name,
      source: args.source,
      ...(flags.checksum === undefined ? {} : { checksum: flags.checksum }),
      ...(flags.version === undefined ? {} : { version: flags.version }),
    });
    this.log(`added box ${box.metadata.name} ${box.metadata.version} (sha256:${box.metadata.disk.sha256})`);
  }
}

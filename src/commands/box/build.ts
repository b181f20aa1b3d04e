import { Args, Flags } from '@oclif/core';
import { VmfileCommand } from '../../cli/command.js';
import { formatSize } from '../../vmfile/size.js';

export default class BoxBuild extends VmfileCommand {
  static override summary = 'Build a box from its recipe (boxes/NAME) with Debian packages';
  static override args = { name: Args.string({ required: true, description: 'recipe name, e.g. debian-12' }) };
  static override flags = {
    version: Flags.string({ description: 'version to store it as (default: today, YYYY.M.D)' }),
    force: Flags.boolean({ description: 'replace the same version if it exists' }),
  };

  async run(): Promise<void> {
    const { buildBox } = await import('../../services/box.js');
    const { flags, args } = await this.parse(BoxBuild);
    const { home, reporter } = this.context();
    const box = await buildBox({ home, name: args.name, reporter, force: flags.force, ...(flags.version === undefined ? {} : { version: flags.version }) });
    this.log(`built box ${box.metadata.name} ${box.metadata.version} (${formatSize(box.metadata.disk.virtualSize)} disk, sha256:${box.metadata.disk.sha256})`);
  }
}

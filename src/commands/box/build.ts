import { Args, Flags } from '@oclif/core';
import { VmfileCommand } from '../../cli/command.js';
import { formatSize } from '../../vmfile/size.js';

export default class BoxBuild extends VmfileCommand {
  static override summary = 'Build a box from its recipe (boxes/NAME) with Debian packages, or rebuild the one Vmfile.lock pins';
  static override args = { name: Args.string({ required: true, description: 'recipe name, e.g. debian-12' }) };
  static override flags = {
    version: Flags.string({ description: 'version to store it as (default: today, YYYY.M.D)' }),
    force: Flags.boolean({ description: 'replace the same version if it exists' }),
    locked: Flags.boolean({
      description: "rebuild the version the project's Vmfile.lock pins, from exactly the packages it names (as vmup does when that box is missing)",
      exclusive: ['version'],
    }),
  };

  async run(): Promise<void> {
    const { buildBox, lockedBuildOf } = await import('../../services/box.js');
    const { flags, args } = await this.parse(BoxBuild);
    const context = this.context();
    const { home, reporter } = context;
    const locked = flags.locked ? await lockedBuildOf(await this.project(flags), args.name, context) : undefined;
    const version = locked?.version ?? flags.version;
    const box = await buildBox({ home, name: args.name, reporter, force: flags.force, ...(version === undefined ? {} : { version }), ...(locked === undefined ? {} : { locked: locked.build }) });
    this.log(`built box ${box.metadata.name} ${box.metadata.version} (${formatSize(box.metadata.disk.virtualSize)} disk, sha256:${box.metadata.disk.sha256})${locked === undefined ? '' : ', identical to Vmfile.lock'}`);
  }
}

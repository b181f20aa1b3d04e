import { Args, Flags } from '@oclif/core';
import { BOX_FORMATS, type BoxFormat } from '../box/formats.js';
import { VmfileCommand } from '../cli/command.js';

export default class Package extends VmfileCommand {
  static override summary = 'Export a halted machine as a box file (keys and machine identity removed) for vmfile box add, or for Vagrant';
  static override args = { machine: Args.string({ description: 'machine name (default: the only machine)' }) };
  static override flags = {
    output: Flags.string({ char: 'o', required: true, description: 'box file to write, e.g. analysis.box' }),
    name: Flags.string({ description: 'box name recorded in the file (default: the project directory name)' }),
    version: Flags.string({ description: 'box version recorded in the file (default: today, YYYY.M.D)' }),
    format: Flags.string({ options: [...BOX_FORMATS], default: 'vmfile', description: "box format: vmfile's own, or vagrant-libvirt for vagrant box add and vagrant up --provider=libvirt" }),
    json: Flags.boolean({ description: 'print the result as JSON' }),
  };

  async run(): Promise<void> {
    const { packageMachine } = await import('../services/package.js');
    const { flags, args } = await this.parse(Package);
    const result = await packageMachine(
      {
        project: await this.project(flags),
        output: flags.output,
        ...(args.machine === undefined ? {} : { machine: args.machine }),
        ...(flags.name === undefined ? {} : { name: flags.name }),
        ...(flags.version === undefined ? {} : { version: flags.version }),
        format: flags.format as BoxFormat,
      },
      this.context(),
    );
    if (flags.json) {
      this.log(JSON.stringify({ machine: result.machine, output: result.output, format: result.format, name: result.name, version: result.version, box: result.metadata, scrubbed: result.scrubbed }, null, 2));
      return;
    }
    if (result.format === 'vmfile') this.log(`wrote ${result.output}: box ${result.name} ${result.version} (disk sha256:${result.metadata.disk.sha256})`);
    else this.log(`wrote ${result.output}: Vagrant libvirt box ${result.name} ${result.version} (${result.metadata.virtual_size} GiB disk; log in as vagrant)`);
    this.log(`removed from the copy: ${result.scrubbed.join(', ') || 'nothing to remove'}`);
  }
}

import { resolve } from 'node:path';
import { Args, Flags } from '@oclif/core';
import { VmfileCommand } from '../cli/command.js';

export default class Sbom extends VmfileCommand {
  static override summary = 'Describe the machines as an SBOM (SPDX 2.3 or CycloneDX 1.6 JSON): the box and every Debian package, from Vmfile.lock, without booting';
  static override strict = false;
  static override args = { machines: Args.string({ description: 'machine names (default: all)' }) };
  static override flags = {
    format: Flags.string({ char: 'f', options: ['spdx', 'cyclonedx'], default: 'spdx', description: 'document format' }),
    output: Flags.string({ char: 'o', description: 'file to write (default: standard output)' }),
  };

  async run(): Promise<void> {
    const { sbom } = await import('../services/sbom.js');
    const { flags, argv } = await this.parse(Sbom);
    const format = flags.format === 'cyclonedx' ? 'cyclonedx' : 'spdx';
    const result = await sbom({ project: await this.project(flags), machines: argv.map(String), format, output: flags.output === undefined ? undefined : resolve(flags.output), tool: { name: this.config.name, version: this.config.version } }, this.context());
    if (flags.output === undefined) process.stdout.write(result.text);
    else this.log(`wrote ${flags.output} (${format}): ${result.machines.map((machine) => `${machine.name}, ${machine.packages} packages`).join('; ')}`);
  }
}

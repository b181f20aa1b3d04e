import { Flags } from '@oclif/core';
import { VmfileCommand } from '../cli/command.js';

export default class Bundle extends VmfileCommand {
  static override summary = 'Write the study to one file: the Vmfile and its lock, the files the steps read and the project folders sync, and every pinned package';
  static override description = 'On another host, offline, vmfile reproduce FILE rebuilds the machines from it, reruns every step and checks the outputs against the lock.';
  static override flags = {
    output: Flags.string({ char: 'o', required: true, description: 'file to write, e.g. study.vmbundle' }),
    json: Flags.boolean({ description: 'print the result as JSON' }),
  };

  async run(): Promise<void> {
    const { bundleStudy } = await import('../services/study.js');
    const { flags } = await this.parse(Bundle);
    const result = await bundleStudy({ project: await this.project(flags), output: flags.output }, this.context());
    if (flags.json) {
      this.log(JSON.stringify(result, null, 2));
      return;
    }
    this.log(`wrote ${result.output}: ${result.files} project files, ${result.packages} packages, ${result.outputs} recorded outputs (${(result.bytes / 1024 ** 2).toFixed(1)} MiB)`);
    if (result.skipped.length > 0) this.log(`left out (not regular files): ${result.skipped.join(', ')}`);
    this.log(`replay it anywhere, offline: vmfile reproduce ${result.output}`);
  }
}

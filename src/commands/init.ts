import { Flags } from '@oclif/core';
import { VmfileCommand } from '../cli/command.js';
import { PROJECT_TSCONFIG_EXTENDS } from '../project/editor-types.js';

export default class Init extends VmfileCommand {
  static override summary = 'Write a commented Vmfile.ts here, or one converted from a Vagrantfile, and add .vmfile/ to .gitignore (never overwrites a Vmfile)';
  static override description =
    '--from runs the Vagrantfile with Ruby, as vagrant does (it is code: run only one you trust), records its configuration and writes the Vmfile. ' +
    'Environment variables it reads are written in as the values they had. Every setting that does not convert is a comment in the Vmfile and a line on stderr.';
  static override flags = {
    box: Flags.string({ description: 'base box of the machine (default: debian-12)', exclusive: ['from'] }),
    from: Flags.string({ description: 'convert this Vagrantfile' }),
  };

  async run(): Promise<void> {
    const { init } = await import('../services/init.js');
    const { flags } = await this.parse(Init);
    const result = await init({
      dir: process.cwd(),
      env: process.env,
      ...(flags.box === undefined ? {} : { box: flags.box }),
      ...(flags.from === undefined ? {} : { from: flags.from }),
    });
    if (result.conversion !== undefined && result.conversion.summary !== '') this.logToStderr(result.conversion.summary);
    this.log(`wrote ${result.vmfile}${result.conversion === undefined ? '' : ` (machines: ${result.conversion.machines.join(', ')})`}`);
    if (result.gitignore !== 'already there') this.log(`.gitignore: ${result.gitignore === 'created' ? 'created with' : 'added'} .vmfile/`);
    if (result.tsconfig === 'created') this.log('wrote tsconfig.json: editors and tsc --noEmit check Vmfile.ts with vmfile\'s types');
    else if (result.tsconfig === 'kept') this.log(`tsconfig.json is yours and was left as it is; to check Vmfile.ts with vmfile's types, add "extends": "${PROJECT_TSCONFIG_EXTENDS}" to it`);
    this.log('next: vmfile validate checks it, vmup boots it');
  }
}

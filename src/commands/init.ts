import { Flags } from '@oclif/core';
import { VmfileCommand } from '../cli/command.js';
import { PROJECT_TSCONFIG_EXTENDS } from '../project/editor-types.js';

export default class Init extends VmfileCommand {
  static override summary = 'Write a commented Vmfile.ts here and add .vmfile/ to .gitignore (never overwrites a Vmfile)';
  static override flags = { box: Flags.string({ description: 'base box of the machine (default: debian-12)' }) };

  async run(): Promise<void> {
    const { init } = await import('../services/init.js');
    const { flags } = await this.parse(Init);
    const result = await init({ dir: process.cwd(), ...(flags.box === undefined ? {} : { box: flags.box }) });
    this.log(`wrote ${result.vmfile}`);
    if (result.gitignore !== 'already there') this.log(`.gitignore: ${result.gitignore === 'created' ? 'created with' : 'added'} .vmfile/`);
    if (result.tsconfig === 'created') this.log('wrote tsconfig.json: editors and tsc --noEmit check Vmfile.ts with vmfile\'s types');
    else if (result.tsconfig === 'kept') this.log(`tsconfig.json is yours and was left as it is; to check Vmfile.ts with vmfile's types, add "extends": "${PROJECT_TSCONFIG_EXTENDS}" to it`);
    this.log('next: vmfile validate checks it, vmup boots it');
  }
}

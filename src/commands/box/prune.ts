import { Args, Flags } from '@oclif/core';
import { VmfileCommand } from '../../cli/command.js';
import { formatSize } from '../../vmfile/size.js';

export default class BoxPrune extends VmfileCommand {
  static override summary = "Remove old box versions, keeping each box's newest and every version a machine or a Vmfile.lock on this host uses";
  static override strict = false;
  static override args = { names: Args.string({ description: 'box names (default: every installed box)' }) };
  static override flags = {
    'dry-run': Flags.boolean({ description: 'only say what would be removed' }),
    json: Flags.boolean({ description: 'print JSON' }),
  };

  async run(): Promise<void> {
    const { boxPrune } = await import('../../services/box.js');
    const { flags, argv } = await this.parse(BoxPrune);
    const result = await boxPrune({ home: this.context().home, dryRun: flags['dry-run'], names: argv.map(String) });
    if (flags.json) {
      this.log(JSON.stringify(result, null, 2));
      return;
    }
    const verb = result.dryRun ? 'would remove' : 'removed';
    for (const warning of result.warnings) this.context().reporter.notice(warning);
    for (const box of result.remove) this.log(`${verb} box ${box.name} ${box.version}`);
    for (const box of result.keep) this.log(`kept box ${box.name} ${box.version}: ${box.reasons.join('; ')}`);
    if (result.partialDownloads.files > 0) this.log(`${verb} ${result.partialDownloads.files} partial download${result.partialDownloads.files > 1 ? 's' : ''} (${formatSize(result.partialDownloads.bytes)})`);
    if (result.packages.files > 0) this.log(`${verb} ${result.packages.files} package file${result.packages.files > 1 ? 's' : ''} no box or Vmfile.lock names (${formatSize(result.packages.bytes)})`);
    if (result.remove.length === 0 && result.partialDownloads.files === 0 && result.packages.files === 0) this.log('nothing to prune');
  }
}

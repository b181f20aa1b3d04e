import { Flags } from '@oclif/core';
import { VmfileCommand } from '../../cli/command.js';
import { formatSize } from '../../vmfile/size.js';
import { describeEntry } from '../../cli/describe-cache.js';

export default class CachePrune extends VmfileCommand {
  static override summary = 'Remove the warm states and provisioning layers that no machine is made over';
  static override flags = {
    'dry-run': Flags.boolean({ description: 'only say what would be removed' }),
    json: Flags.boolean({ description: 'print JSON' }),
  };

  async run(): Promise<void> {
    const { pruneCache } = await import('../../services/cache.js');
    const { flags } = await this.parse(CachePrune);
    const result = await pruneCache(this.context().home, { dryRun: flags['dry-run'] });
    if (flags.json) {
      this.log(JSON.stringify(result, null, 2));
      return;
    }
    if (result.unknown.length > 0) {
      for (const problem of result.unknown) this.context().reporter.notice(`could not read the disk of ${problem}`);
      this.log('removed nothing: a machine whose disk cannot be read may stand on any cached state (destroy it, or mend its disk, then prune again)');
      return;
    }
    const verb = result.dryRun ? 'would remove' : 'removed';
    for (const entry of result.removed) this.log(`${verb} ${describeEntry(entry)}`);
    for (const key of result.cleared) this.log(`cleared ${key.slice(0, 12)}, left unfinished by a vmfile that was killed while making it`);
    if (result.dryRun) for (const key of result.unfinished) this.log(`would clear ${key.slice(0, 12)} if no vmfile is making it`);
    const kept = result.entries.length - result.removed.length;
    if (result.removed.length === 0 && result.cleared.length === 0) this.log('nothing to prune');
    else this.log(`${verb} ${formatSize(result.removed.reduce((sum, entry) => sum + entry.bytes, 0))}; kept ${kept} that machines stand on`);
  }
}

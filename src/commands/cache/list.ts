import { Flags } from '@oclif/core';
import { VmfileCommand } from '../../cli/command.js';
import { formatSize } from '../../vmfile/size.js';
import { describeEntry } from '../../cli/describe-cache.js';

export default class CacheList extends VmfileCommand {
  static override summary = 'List the warm states and provisioning layers, with their size, age and the machines that use them';
  static override flags = { json: Flags.boolean({ description: 'print JSON' }) };

  async run(): Promise<void> {
    const { listCache } = await import('../../services/cache.js');
    const { flags } = await this.parse(CacheList);
    const listing = await listCache(this.context().home);
    if (flags.json) {
      this.log(JSON.stringify(listing, null, 2));
      return;
    }
    for (const problem of listing.unknown) this.context().reporter.notice(`could not read the disk of ${problem}`);
    if (listing.entries.length === 0) this.log('nothing cached (the first machine of a shape that starts warm makes a warm state, and layers for its first once steps)');
    for (const entry of listing.entries) {
      this.log(describeEntry(entry));
      for (const user of entry.usedBy) this.log(`  used by ${user}`);
    }
    for (const key of listing.unfinished) this.log(`${key.slice(0, 12)}  unfinished: being made, or left by a vmfile killed while making it (cache prune clears it)`);
    const total = listing.entries.reduce((sum, entry) => sum + entry.bytes, 0);
    if (listing.entries.length > 0) this.log(`${formatSize(total)} in all`);
  }
}

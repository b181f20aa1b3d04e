import { Args, Flags } from '@oclif/core';
import { VmfileCommand } from '../../cli/command.js';
import { UserError } from '../../errors.js';

export default class BoxOutdated extends VmfileCommand {
  static override summary = 'Compare installed boxes with the newest version in their catalogs';
  static override strict = false;
  static override args = { names: Args.string({ description: 'box names (default: every installed box)' }) };
  static override flags = { json: Flags.boolean({ description: 'print JSON' }) };

  async run(): Promise<void> {
    const { boxOutdated } = await import('../../services/box.js');
    const { flags, argv } = await this.parse(BoxOutdated);
    const reports = await boxOutdated({ home: this.context().home, names: argv.map(String) });
    if (flags.json) this.log(JSON.stringify(reports, null, 2));
    else if (reports.length === 0) this.log('no boxes installed');
    for (const report of flags.json ? [] : reports) {
      const detail =
        report.status === 'outdated'
          ? `${report.latest ?? ''} is available (vmfile box update ${report.name})`
          : report.status === 'up to date'
            ? 'newest in its catalog'
            : report.status === 'no catalog'
              ? 'not installed from a catalog'
              : `failed: ${report.error ?? ''}`;
      this.log(`${report.name.padEnd(24)} ${report.installed.padEnd(12)} ${report.status.padEnd(11)} ${detail}`);
    }
    const failed = reports.filter((report) => report.status === 'failed');
    if (failed.length > 0) throw new UserError(`could not check ${failed.map((report) => report.name).join(', ')} against ${failed.length > 1 ? 'their catalogs' : 'its catalog'}`, { hint: 'see the errors above' });
  }
}

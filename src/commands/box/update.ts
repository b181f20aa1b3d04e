import { Args, Flags } from '@oclif/core';
import { VmfileCommand } from '../../cli/command.js';
import { UserError } from '../../errors.js';

export default class BoxUpdate extends VmfileCommand {
  static override summary = 'Install the newest version of boxes from their catalogs (machines and Vmfile.lock are left as they are)';
  static override strict = false;
  static override args = { names: Args.string({ description: 'box names (default: every box installed from a catalog)' }) };
  static override flags = { json: Flags.boolean({ description: 'print JSON' }) };

  async run(): Promise<void> {
    const { boxUpdate } = await import('../../services/box.js');
    const { flags, argv } = await this.parse(BoxUpdate);
    const names = argv.map(String);
    const reports = await boxUpdate({ home: this.context().home, reporter: this.context().reporter, names });
    if (flags.json) this.log(JSON.stringify(reports, null, 2));
    for (const report of flags.json ? [] : reports) {
      if (report.updated !== undefined) this.log(`updated box ${report.name}: ${report.installed} -> ${report.updated} (vmfile lock --update makes a project use it)`);
      else if (report.status === 'up to date') this.log(`box ${report.name} ${report.installed} is the newest in its catalog`);
      else if (report.status === 'no catalog' && names.length > 0) this.log(`box ${report.name} was not installed from a catalog: nothing to update from`);
      else if (report.status === 'failed') this.log(`box ${report.name}: failed: ${report.error ?? ''}`);
    }
    const failed = reports.filter((report) => report.status === 'failed');
    if (failed.length > 0) throw new UserError(`could not update ${failed.map((report) => report.name).join(', ')}`, { hint: 'see the errors above' });
    const unknown = reports.filter((report) => report.status === 'no catalog');
    if (names.length > 0 && unknown.length > 0) {
      throw new UserError(`box ${unknown.map((report) => report.name).join(', ')} has no catalog to update from`, { hint: 'only boxes added from a Vagrant catalog URL can be updated; add a newer one with: vmfile box add' });
    }
  }
}

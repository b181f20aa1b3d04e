import { Args, Flags } from '@oclif/core';
import { VmfileCommand } from '../cli/command.js';
import { ConfigError } from '../errors.js';

export default class Lock extends VmfileCommand {
  static override summary = 'Verify Vmfile.lock against the installed boxes and show where its packages are, or record the boxes with --update';
  static override strict = false;
  static override args = { machines: Args.string({ description: 'machine names (default: all)' }) };
  static override flags = {
    update: Flags.boolean({ description: 'record the boxes the Vmfile uses now (box, version, disk sha256, and for a box built from a recipe every package)' }),
    json: Flags.boolean({ description: 'print JSON' }),
  };

  async run(): Promise<void> {
    const { lock } = await import('../services/lock.js');
    const { flags, argv } = await this.parse(Lock);
    const reports = await lock({ project: await this.project(flags), machines: argv.map(String), update: flags.update }, this.context());
    if (flags.json) this.log(JSON.stringify(reports, null, 2));
    else {
      for (const report of reports) {
        const entry = report.entry === undefined ? '' : ` box ${report.entry.box} ${report.entry.version} sha256:${report.entry.sha256}`;
        this.log(`${report.machine.padEnd(12)} ${report.status.padEnd(18)}${entry}`.trimEnd());
        for (const difference of report.differences) this.log(`  - ${difference}`);
        const packages = report.packages;
        if (packages !== undefined) {
          const stored = Object.entries(packages.stored).map(([origin, count]) => `${count} from ${origin}`).join(', ');
          this.log(`  packages: ${packages.pinned} pinned; in the package store: ${packages.pinned - packages.missing}${stored === '' ? '' : ` (${stored})`}`);
          if (packages.missing > 0) {
            const names = packages.list.filter((deb) => deb.available === null).map((deb) => `${deb.name} ${deb.version}`);
            this.log(`  not here (a rebuild asks the recipe's mirrors, then the snapshot mirror): ${listed(names)}`);
          }
        }
        const steps = report.steps;
        if (steps !== undefined) {
          this.log(`  steps' packages: ${steps.pinned} pinned; in the package store: ${steps.pinned - steps.missing.length}`);
          if (steps.missing.length > 0) this.log(`  not here (its steps get them from the mirror, unpinned): ${listed(steps.missing)}`);
          if (steps.unpinned.length > 0) this.log(`  unpinned (installed by a step, no file to pin): ${listed(steps.unpinned)}`);
        }
      }
    }
    // A box that is not installed is no mismatch: vmup gets the locked one.
    const bad = reports.filter((report) => report.status === 'mismatch');
    if (bad.length > 0) {
      throw new ConfigError(`Vmfile.lock does not match the installed boxes for machine${bad.length > 1 ? 's' : ''} ${bad.map((report) => `"${report.machine}"`).join(', ')}`, {
        hint: 'if the installed boxes are what you want now, record them with: vmfile lock --update (and commit Vmfile.lock)',
      });
    }
  }
}

function listed(items: readonly string[]): string {
  return `${items.slice(0, 8).join(', ')}${items.length > 8 ? `, and ${items.length - 8} more` : ''}`;
}

import { Args, Flags } from '@oclif/core';
import { VmfileCommand } from '../cli/command.js';
import { UserError } from '../errors.js';

export default class Reproduce extends VmfileCommand {
  static override summary = 'Replay a study bundle: unpack it into a new directory, rebuild its machines from the pinned packages, rerun every step, and check each output against the lock';
  static override description = 'Exits 0 only when every output the study recorded is made again with the same digest. Without --keep the machines are destroyed afterwards (the directory stays).';
  static override args = { file: Args.string({ required: true, description: 'the bundle, from vmfile bundle' }) };
  static override flags = {
    into: Flags.string({ description: 'directory to replay in, new or empty (default: the bundle name without .vmbundle, here)' }),
    keep: Flags.boolean({ description: 'keep the machines running afterwards' }),
    json: Flags.boolean({ description: 'print the result as JSON' }),
  };

  async run(): Promise<void> {
    const { reproduceStudy } = await import('../services/study.js');
    const { args, flags } = await this.parse(Reproduce);
    const result = await reproduceStudy({ file: args.file, ...(flags.into === undefined ? {} : { into: flags.into }), keep: flags.keep }, this.context());
    if (flags.json) this.log(JSON.stringify(result, null, 2));
    else {
      const rows = result.checks.map((check) => [check.machine, `"${check.step}"`, check.path, short(check.locked), short(check.now), check.verdict]);
      const table = [['MACHINE', 'STEP', 'OUTPUT', 'LOCKED', 'NOW', ''], ...rows];
      const widths = table[0]?.map((_, column) => Math.max(...table.map((row) => row[column]?.length ?? 0))) ?? [];
      for (const row of table) this.log(row.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  ').trimEnd());
      if (result.checks.length === 0) this.log('the study recorded no outputs: the machines were rebuilt and provisioned, with nothing to check');
      if (result.unpinned.length > 0) this.log(`the steps installed ${result.unpinned.length} packages the lock does not pin: ${result.unpinned.join(', ')}`);
      this.log(result.kept ? `kept: the machines run in ${result.directory} (cd there; vmssh)` : `replayed in ${result.directory}; its machines were destroyed (--keep keeps them)`);
    }
    const failed = result.checks.filter((check) => check.verdict !== 'match');
    if (failed.length > 0) {
      throw new UserError(`${failed.length} of ${result.checks.length} outputs do not match the study's lock: ${failed.map((check) => `${check.path} (${check.verdict})`).join(', ')}`, {
        hint: `compare the files in the guest (vmfile reproduce --keep, then vmssh in ${result.directory}) with the study's; the lock there now records this run's digests`,
      });
    }
  }
}

function short(digest: string | undefined): string {
  return digest === undefined ? '-' : `${digest.slice(0, 16)}…`;
}

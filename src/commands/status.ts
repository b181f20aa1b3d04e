import { Args, Flags } from '@oclif/core';
import { VmfileCommand } from '../cli/command.js';

export default class Status extends VmfileCommand {
  static override summary = 'Show whether each machine is not created, running, suspended, halted, broken or unreachable';
  static override strict = false;
  static override args = { machines: Args.string({ description: 'machine names (default: all)' }) };
  static override flags = { json: Flags.boolean({ description: 'print JSON' }) };

  async run(): Promise<void> {
    const { status } = await import('../services/status.js');
    const { flags, argv } = await this.parse(Status);
    const entries = await status({ project: await this.project(flags), machines: argv.map(String) });
    if (flags.json) {
      this.log(JSON.stringify(entries, null, 2));
      return;
    }
    for (const entry of entries) {
      const details = [
        entry.box === undefined ? undefined : `box ${entry.box}`,
        // Said where it is news: another host, or a name the host gives it.
        entry.where === undefined || (entry.where.host === 'this host' && entry.where.name === undefined) ? undefined : `${entry.where.driver} on ${entry.where.host}${entry.where.name === undefined ? '' : ` (${entry.where.name})`}`,
        entry.accel,
        entry.pid === undefined ? undefined : `${entry.where?.pidLabel ?? 'pid'} ${entry.pid}`,
        entry.starting === undefined ? undefined : `${entry.starting} not finished (in progress, or interrupted: vmup finishes it)`,
        ...entry.ports.map((port) => `${port.name} ${port.hostIp}:${port.host}->${port.guest}/${port.protocol}`),
        ...(entry.errors ?? []),
        entry.drift === undefined ? undefined : `differs from the Vmfile (vmfile reload applies it): ${entry.drift.join('; ')}`,
      ].filter((item) => item !== undefined);
      this.log(`${entry.machine.padEnd(12)} ${entry.status.padEnd(12)} ${details.join(', ')}`.trimEnd());
    }
  }
}

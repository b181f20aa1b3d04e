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
        entry.libvirt === undefined ? undefined : `libvirt on ${entry.libvirt.host} (domain ${entry.libvirt.domain})`,
        entry.accel,
        // On another libvirt host there is no process here: libvirt's domain id stands in.
        entry.pid === undefined ? undefined : entry.libvirt !== undefined && entry.libvirt.host !== 'this host' ? `domain id ${entry.pid}` : `pid ${entry.pid}`,
        entry.starting === undefined ? undefined : `${entry.starting} not finished (in progress, or interrupted: vmup finishes it)`,
        ...entry.ports.map((port) => `${port.name} ${port.hostIp}:${port.host}->${port.guest}/${port.protocol}`),
        ...(entry.errors ?? []),
        entry.drift === undefined ? undefined : `differs from the Vmfile (vmfile reload applies it): ${entry.drift.join('; ')}`,
      ].filter((item) => item !== undefined);
      this.log(`${entry.machine.padEnd(12)} ${entry.status.padEnd(12)} ${details.join(', ')}`.trimEnd());
    }
  }
}

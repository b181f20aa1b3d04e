import { Flags } from '@oclif/core';
import { VmfileCommand } from '../cli/command.js';
import type { GlobalEntry } from '../services/global-status.js';
import { printable } from '../ui/printable.js';

export default class GlobalStatus extends VmfileCommand {
  static override summary = 'List every machine on this host, across projects: project, machine, state, ports';
  static override description = 'Projects are those where vmup ran; an entry whose project or machines are gone is pruned.';
  static override flags = { json: Flags.boolean({ description: 'print JSON: [{ project, vmfile, machine, status, pid?, ports }]' }) };

  async run(): Promise<void> {
    const { globalStatus } = await import('../services/global-status.js');
    const { flags } = await this.parse(GlobalStatus);
    const { machines, pruned } = await globalStatus({ home: this.context().home });
    if (flags.json) {
      this.log(JSON.stringify(machines, null, 2));
      return;
    }
    if (machines.length === 0) this.log('no machines on this host (vmup in a project creates them)');
    for (const line of globalStatusLines(machines)) this.log(line);
    if (pruned > 0) this.logToStderr(`pruned ${pruned} entr${pruned === 1 ? 'y' : 'ies'} whose project is gone`);
  }
}

/** One line per machine. Project paths and machine names come from other projects' files: shown printable, never raw. */
export function globalStatusLines(machines: readonly GlobalEntry[]): string[] {
  return machines.map((entry) => {
    const ports = entry.ports.map((port) => `${port.name} ${port.hostIp}:${port.host}->${port.guest}/${port.protocol}`);
    return `${printable(entry.project)}  ${printable(entry.machine).padEnd(12)} ${entry.status.padEnd(12)} ${printable(ports.join(', '))}`.trimEnd();
  });
}

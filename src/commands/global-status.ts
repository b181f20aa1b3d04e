import { Flags } from '@oclif/core';
import { VmfileCommand } from '../cli/command.js';
import type { GlobalEntry } from '../services/global-status.js';
import { printable } from '../ui/printable.js';

export default class GlobalStatus extends VmfileCommand {
  static override summary = 'List every machine on this host, across projects: project, machine, state, ports';
  static override description =
    'Projects are those where vmup ran. One that cannot be read now (moved, deleted, unmounted) is listed as such and kept, with what its machines stand on; --prune forgets those whose directory is gone.';
  static override flags = {
    json: Flags.boolean({ description: 'print JSON: [{ project, vmfile, machine, status, pid?, ports }]' }),
    prune: Flags.boolean({ description: 'forget projects whose directory is gone (their warm states and boxes are then no longer kept for them)' }),
  };

  async run(): Promise<void> {
    const { globalStatus } = await import('../services/global-status.js');
    const { flags } = await this.parse(GlobalStatus);
    const { machines, unreadable, pruned } = await globalStatus({ home: this.context().home, prune: flags.prune });
    if (flags.json) {
      this.log(JSON.stringify(machines, null, 2));
      return;
    }
    if (machines.length === 0) this.log('no machines on this host (vmup in a project creates them)');
    for (const line of globalStatusLines(machines)) this.log(line);
    for (const project of unreadable) {
      this.logToStderr(`${printable(project)} cannot be read (moved, deleted or unmounted?): the warm states and boxes its machines stand on are kept; if it is gone for good, vmfile global-status --prune forgets it`);
    }
    if (pruned > 0) this.logToStderr(`forgot ${pruned} entr${pruned === 1 ? 'y' : 'ies'} whose project is gone or empty`);
  }
}

/** One line per machine. Project paths and machine names come from other projects' files: shown printable, never raw. */
export function globalStatusLines(machines: readonly GlobalEntry[]): string[] {
  return machines.map((entry) => {
    const ports = entry.ports.map((port) => `${port.name} ${port.hostIp}:${port.host}->${port.guest}/${port.protocol}`);
    return `${printable(entry.project)}  ${printable(entry.machine).padEnd(12)} ${entry.status.padEnd(12)} ${printable(ports.join(', '))}`.trimEnd();
  });
}

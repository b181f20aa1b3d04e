/** `vmfile status`'s lines, one per machine: its name, its status, and what is news about it. */
import type { StatusEntry } from '../services/status.js';

export function statusLines(entries: readonly StatusEntry[]): string[] {
  return entries.map((entry) => {
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
    return `${entry.machine.padEnd(12)} ${entry.status.padEnd(12)} ${details.join(', ')}`.trimEnd();
  });
}

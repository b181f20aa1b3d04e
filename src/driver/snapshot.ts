/** Snapshots as every driver lists them, and what every driver says when one is not as asked. */
import { UserError } from '../errors.js';

export interface Snapshot {
  name: string;
  /** Seconds since the epoch. */
  date: number;
  /** Bytes of saved memory and device state; 0 for a disk-only snapshot. */
  memoryBytes: number;
}

/** What every driver says when a snapshot name is unknown: the real ones, or how to make one. */
export function unknownSnapshot(machine: string, name: string, snapshots: readonly { name: string }[]): UserError {
  return new UserError(`machine "${machine}" has no snapshot "${name}"`, {
    hint: snapshots.length === 0 ? 'it has no snapshots; vmfile snapshot save NAME makes one' : `its snapshots: ${snapshots.map((s) => s.name).join(', ')}`,
  });
}

/** What every driver says when a snapshot name is taken. */
export function snapshotTaken(machine: string, name: string): UserError {
  return new UserError(`machine "${machine}" already has a snapshot "${name}"`, { hint: `delete it first (vmfile snapshot delete ${name}) or choose another name` });
}

/** What every driver says when a snapshot taken while halted is to be loaded into a running machine. */
export function snapshotWithoutMemory(machine: string, name: string): UserError {
  return new UserError(`machine "${machine}": snapshot "${name}" holds no memory (it was taken while halted), so it cannot be loaded into the running machine`, {
    hint: `halt the machine (vmhalt), then restore it: vmfile snapshot restore ${name}`,
  });
}

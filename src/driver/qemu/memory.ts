/**
 * Saving a running machine's memory into its disk (savevm, for suspend and snapshots),
 * with a deadline fitted to the guest's size and a plain word when the disk is full.
 */
import { statfs } from 'node:fs/promises';
import { dirname } from 'node:path';
import { UserError } from '../../errors.js';
import type { QmpClient } from '../../qmp/client.js';
import { formatSize } from '../../vmfile/size.js';

/** Room the overlay needs beyond the memory itself (device state, qcow2 metadata). */
const LOW_SPACE_MARGIN = 64 * 1024 * 1024;

/**
 * Runs `save` with a deadline as long as writing the guest's memory at a slow 20 MiB/s
 * would take: savevm answers only when done and reports no progress on the way (QEMU
 * runs it in its main loop). On a full file system it fails with a bare I/O error, which
 * is said plainly instead, with what is free and what is needed. A failed save leaves
 * the snapshot table, and so the earlier snapshots, as they were.
 */
export async function savingMemory(machine: string, qmp: QmpClient, overlay: string, save: (timeoutMs: number) => Promise<void>): Promise<void> {
  const memory = await qmp
    .execute<{ 'base-memory'?: number }>('query-memory-size-summary', {}, { timeoutMs: 5000 })
    .then((summary) => summary['base-memory'])
    .catch(() => undefined);
  const timeoutMs = 120_000 + Math.ceil((memory ?? 0) / (20 * 1024 * 1024)) * 1000;
  try {
    await save(timeoutMs);
  } catch (error) {
    const dir = dirname(overlay);
    const free = await statfs(dir).then((fs) => fs.bavail * fs.bsize, () => undefined);
    if (free !== undefined && memory !== undefined && free < memory + LOW_SPACE_MARGIN) {
      throw new UserError(`machine "${machine}": the disk is full: the file system holding ${dir} has ${formatSize(free)} free, and saving the memory needs up to ${formatSize(memory)}`, {
        hint: 'free space there (vmfile snapshot delete NAME frees a snapshot\'s), then run the command again. Earlier snapshots are kept; if the guest fills the disk meanwhile, QEMU pauses it and vmup continues it',
        cause: error,
      });
    }
    throw error;
  }
}

/**
 * A machine's running state (memory and devices) to and from a file, through QEMU's
 * migration: the warm start's saved state. QEMU 7.2 has no file: transport, so the
 * stream goes through `exec:` to dd, with the path as one single-quoted word. The
 * path is vmfile's own (under ~/.vmfile/warm), never a Vmfile value.
 *
 * The machine is paused before the stream starts, so the copy is one pass and its
 * disk is left exactly as the saved memory expects it.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { QmpClient } from '../../qmp/client.js';
import { shellCommand } from '../../ssh/quote.js';

/** Bytes per second: no throttle (QEMU's default of 32 MiB/s is for live migration over a network). */
const UNTHROTTLED = 64 * 1024 ** 3;

interface MigrationInfo {
  status?: string;
  'error-desc'?: string;
  ram?: { transferred?: number; total?: number; remaining?: number };
}

/** Pauses the guest and writes its state to `file` (fsynced); resolves once QEMU says completed. */
export async function saveStateToFile(qmp: QmpClient, file: string, options: { timeoutMs: number; progress?: (fraction: number) => void }): Promise<void> {
  await qmp.execute('stop', {});
  await qmp.execute('migrate-set-parameters', { 'max-bandwidth': UNTHROTTLED });
  // umask: the file holds the guest's memory, keys included.
  await qmp.execute('migrate', { uri: `exec:umask 077; ${shellCommand(['dd', `of=${file}`, 'bs=1M', 'conv=fsync', 'status=none'])}` });
  await waitForMigration(qmp, 'save the machine\'s state', options);
}

/**
 * In a QEMU started with `-incoming defer`: reads the state from `file`, runs
 * `beforeContinue` while the guest is still paused, then continues the guest.
 */
export async function loadStateFromFile(qmp: QmpClient, file: string, options: { timeoutMs: number; beforeContinue?: () => Promise<void> }): Promise<void> {
  await qmp.execute('migrate-incoming', { uri: `exec:${shellCommand(['dd', `if=${file}`, 'bs=1M', 'status=none'])}` });
  await waitForMigration(qmp, 'load the saved state', options);
  // The stream carries the run state it was saved in (paused, see saveStateToFile), and
  // QEMU takes it on once loaded.
  const deadline = Date.now() + 10_000;
  for (;;) {
    const { status } = await qmp.execute<{ status?: string }>('query-status', {});
    if (status !== 'inmigrate') break;
    if (Date.now() > deadline) throw new Error(`QEMU loaded the saved state but stayed in state ${status}`);
    await sleep(10);
  }
  await options.beforeContinue?.();
  await qmp.execute('cont', {});
}

async function waitForMigration(qmp: QmpClient, what: string, options: { timeoutMs: number; progress?: (fraction: number) => void }): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const info = await qmp.execute<MigrationInfo>('query-migrate', {});
    if (info.status === 'completed') return;
    if (info.status === 'failed' || info.status === 'cancelled') throw new Error(`QEMU could not ${what}: ${info['error-desc'] ?? info.status}`);
    const { transferred, total } = info.ram ?? {};
    if (options.progress !== undefined && transferred !== undefined && total !== undefined && total > 0) options.progress(Math.min(1, transferred / total));
    if (Date.now() > deadline) throw new Error(`QEMU did not ${what} within ${Math.round(options.timeoutMs / 1000)} s (migration status: ${info.status ?? 'none'})`);
    await sleep(info.status === undefined ? 20 : 50);
  }
}

/**
 * Whether a machine's QEMU runs, from its pid file and /proc alone: the one check
 * QemuDriver.pid() makes, in a module light enough for vmssh's quick path
 * (driver/local-process.ts), which must not load QMP or the record schema.
 */
import { runningPid } from '../../qemu/process.js';
import type { QemuFiles } from './files.js';

export function qemuPid(files: Pick<QemuFiles, 'pidFile' | 'overlay'>): Promise<number | undefined> {
  return runningPid(files.pidFile, files.overlay);
}

/**
 * Whether a built-in machine's QEMU runs, from its pid file and /proc alone: the one
 * check QemuDriver.pid() makes, in a module light enough for vmssh's quick path
 * (cli/quick-ssh.ts), which must not load QMP or the record schema.
 */
import { runningPid } from '../../qemu/process.js';
import type { MachinePaths } from '../../store/layout.js';

export function qemuPid(paths: Pick<MachinePaths, 'pidFile' | 'overlay'>): Promise<number | undefined> {
  return runningPid(paths.pidFile, paths.overlay);
}

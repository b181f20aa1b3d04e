/**
 * vmssh's quick path asks one thing of the drivers: does this machine run as a process
 * on this host, known from its files alone, and which? Light on purpose (no QMP, no
 * virsh, no record schema): it is loaded before anything else of vmfile.
 */
import { qemuFiles } from './qemu/files.js';
import { qemuPid } from './qemu/pid.js';

/**
 * The pid of the machine in `dir` when its driver runs it as a local process (the
 * record names no placement elsewhere: vmfile's own QEMU) and it runs now; undefined
 * for any other machine, which the full command then handles.
 */
export async function localProcessPid(dir: string, record: { provider?: unknown }): Promise<number | undefined> {
  if (record.provider !== undefined) return undefined;
  return qemuPid(qemuFiles(dir));
}

/**
 * The QEMU process of a machine: start it detached, find it again, wait for it to end.
 *
 * A pid file alone is never trusted: pids are reused after a crash or reboot. A pid
 * counts as the machine's QEMU only while /proc/<pid>/cmdline is a QEMU command line
 * naming the machine's own overlay disk.
 */
import { readFile, rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { run } from '../exec.js';
import { ExternalCommandError, UserError } from '../errors.js';
import { readRegularFile } from '../store/regular-file.js';

export const QEMU_BINARY = 'qemu-system-x86_64';

/** Starts QEMU with -daemonize: returns once the guest is created, with its pid. */
export async function launchQemu(args: readonly string[], pidFile: string): Promise<number> {
  await rm(pidFile, { force: true });
  await run(QEMU_BINARY, args, { purpose: 'start QEMU' });
  const pid = await readPid(pidFile);
  if (pid === undefined) throw new ExternalCommandError(`QEMU started but wrote no pid file ${pidFile}`, QEMU_BINARY, args, '');
  return pid;
}

/** A pid file in the machine's directory: read as a regular file only (a FIFO there must not hang status). */
async function readPid(pidFile: string): Promise<number | undefined> {
  try {
    const pid = Number.parseInt((await readRegularFile(pidFile, 64)).trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** The pid of the machine's QEMU if it is running now, else undefined. */
export async function runningPid(pidFile: string, overlay: string): Promise<number | undefined> {
  const pid = await readPid(pidFile);
  if (pid === undefined) return undefined;
  return (await isQemuFor(pid, overlay)) ? pid : undefined;
}

async function isQemuFor(pid: number, overlay: string): Promise<boolean> {
  try {
    const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // A zombie has exited; its parent has not reaped it yet.
    if (/\) Z /.test(stat)) return false;
    return (argv[0] ?? '').includes('qemu-system') && argv.some((arg) => arg.includes(`file=${overlay.replaceAll(',', ',,')},`));
  } catch {
    return false;
  }
}

/** Resolves true once the process is gone, false if it still runs at the deadline. */
export async function waitForExit(pid: number, overlay: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!(await isQemuFor(pid, overlay))) return true;
    await sleep(100);
  }
  return !(await isQemuFor(pid, overlay));
}

export function killProcess(pid: number, signal: NodeJS.Signals = 'SIGKILL'): void {
  try {
    process.kill(pid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw new UserError(`could not stop QEMU (pid ${pid}): ${String(error)}`);
  }
}

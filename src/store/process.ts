/**
 * Facts about host processes and mounts that state on disk refers to: whether the
 * process that owns a lock or a staging directory still runs (its pid and, since pids
 * are reused, its start time), and whether anything is mounted under a directory
 * before it is removed.
 */
import { readdir, readFile, readlink } from 'node:fs/promises';

/** Field 22 of /proc/PID/stat (clock ticks since boot); undefined where /proc is not there. */
export async function processStartTime(pid: number): Promise<string | undefined> {
  try {
    const text = await readFile(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    return text.slice(text.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/**
 * Whether pid still runs and, when `start` is known, is the process that started then.
 * A pid that exists but belongs to another user (EPERM) counts as gone: vmfile's state
 * directories are private, so no other user's process owns them.
 */
export async function processAlive(pid: number, start?: string): Promise<boolean> {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  if (start === undefined) return true;
  const now = await processStartTime(pid);
  return now === undefined || now === start;
}

/** Mount points at or below `dir` (a build's chroot mounts /proc and /sys inside its tree). */
export async function mountsUnder(dir: string): Promise<string[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  return text
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((point): point is string => point !== undefined)
    // mountinfo escapes space, tab, newline and backslash as octal.
    .map((point) => point.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8))))
    .filter((point) => point === dir || point.startsWith(prefix));
}

/** Processes whose working directory or root is at or below `dir` (a killed build's orphaned chroot, still installing). */
export async function processesUnder(dir: string): Promise<number[]> {
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  const inside = (path: string | undefined) => path !== undefined && (path === dir || path.startsWith(prefix));
  const pids: number[] = [];
  for (const entry of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry)) continue;
    const [cwd, root] = await Promise.all([readlink(`/proc/${entry}/cwd`).catch(() => undefined), readlink(`/proc/${entry}/root`).catch(() => undefined)]);
    if (inside(cwd) || inside(root)) pids.push(Number(entry));
  }
  return pids;
}

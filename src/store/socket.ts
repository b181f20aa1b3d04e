/**
 * Unix socket paths: the one policy and the one limit. sun_path holds 108 bytes on
 * Linux with its terminating NUL, so a path may have 107. A socket whose natural place
 * (a machine's directory, deep in a project) would be longer goes to a private runtime
 * directory instead, named by a hash of where it belongs, so every vmfile process finds
 * the same one.
 *
 * That directory may live under /tmp, where anyone can create a name first, so it is
 * made with mode 0700 and refused unless it is a real directory of ours that nobody
 * else can enter: a socket there is never one another user planted.
 */
import { createHash } from 'node:crypto';
import { lstat, mkdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ConfigError } from '../errors.js';

/** The longest path a Unix socket can be bound at on Linux (sun_path, less its NUL). */
export const MAX_SOCKET_PATH = 107;

/**
 * A Unix socket belonging to `dir` (a machine's, a project's), short enough to bind with
 * `reserve` bytes to spare (OpenSSH binds its connection master at the path plus a
 * temporary suffix).
 */
export function socketPath(dir: string, name: string, reserve = 0): string {
  const direct = join(dir, name);
  if (Buffer.byteLength(direct) + reserve <= MAX_SOCKET_PATH) return direct;
  const digest = createHash('sha256').update(dir).digest('hex').slice(0, 16);
  return join(runtimeDir(), `${digest}-${name}`);
}

/** Private directory for sockets whose natural path is too long. */
export function runtimeDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env['XDG_RUNTIME_DIR'];
  const uid = typeof process.getuid === 'function' ? process.getuid() : 0;
  return xdg !== undefined && xdg !== '' ? join(xdg, 'vmfile') : join(tmpdir(), `vmfile-${uid}`);
}

/** Makes sure the directory `socket` will be created in is safe to use (only checks the runtime directory; machine directories are vmfile's own). */
export async function ensureSocketDir(socket: string, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const dir = runtimeDir(env);
  if (dirname(socket) !== dir) return;
  // An existing name of any kind is examined below, not trusted.
  await mkdir(dir, { recursive: true, mode: 0o700 }).catch((error: unknown) => {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  });
  const info = await lstat(dir);
  const uid = typeof process.getuid === 'function' ? process.getuid() : info.uid;
  const problem = info.isSymbolicLink()
    ? 'is a symbolic link'
    : !info.isDirectory()
      ? 'is not a directory'
      : info.uid !== uid
        ? `belongs to uid ${info.uid}, not to you (${uid})`
        : (info.mode & 0o077) !== 0
          ? `can be entered by others (mode ${(info.mode & 0o777).toString(8)})`
          : undefined;
  if (problem !== undefined) {
    throw new ConfigError(`socket directory ${dir} ${problem}, so vmfile will not put its sockets there`, {
      hint: `remove it (vmfile makes it again, mode 0700), or set XDG_RUNTIME_DIR to a private directory`,
    });
  }
}

/** Set in /proc/net/unix's Flags column for a socket that listen() was called on. */
const SO_ACCEPTCON = 0x10000;

/**
 * True once a process listens on the Unix socket at `socket`. The file appears at
 * bind(), a moment before listen(); a client connecting in between is refused. Read from
 * /proc/net/unix rather than by connecting, because a probe would use up a server that
 * takes one client (virtiofsd).
 */
export async function unixSocketListens(socket: string): Promise<boolean> {
  const table = await readFile('/proc/net/unix', 'utf8');
  return table.split('\n').some((line) => {
    const fields = line.trim().split(/\s+/);
    // Num RefCount Protocol Flags Type St Inode Path; a path with spaces is not one of ours.
    return fields.length === 8 && fields[7] === socket && (Number.parseInt(fields[3] ?? '0', 16) & SO_ACCEPTCON) !== 0;
  });
}

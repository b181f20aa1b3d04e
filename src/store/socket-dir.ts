/**
 * The private directory for Unix sockets whose natural path is too long (see
 * layout.ts socketPath). It may live under /tmp, where anyone can create a name first,
 * so it is made with mode 0700 and refused unless it is a real directory of ours that
 * nobody else can enter: a socket there is never one another user planted.
 */
import { lstat, mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ConfigError } from '../errors.js';
import { runtimeDir } from './layout.js';

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

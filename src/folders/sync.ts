/**
 * The synced-folder driver: prepare (before QEMU starts: virtiofsd daemons) and
 * enable (after SSH answers: mount live folders, rsync the others). Both are safe to
 * repeat: a mounted folder is left mounted, rsync copies only what changed.
 */
import { access, rm, stat, writeFile } from 'node:fs/promises';
import { isAbsolute, join, relative } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { run, spawnDetached } from '../exec.js';
import { ConfigError, GuestError } from '../errors.js';
import type { SshSession } from '../ssh/client.js';
import { sshConfigBlock } from '../ssh/config.js';
import { shellCommand, shellQuote } from '../ssh/quote.js';
import { PROJECT_STATE_DIR, type MachinePaths } from '../store/layout.js';
import type { FolderSpec } from '../vmfile/schema.js';
import type { PlannedFolder } from './plan.js';
import { rsyncFilterArgs } from './rsync-filter.js';
import { copyWithTar, guestCopyTool } from './without-rsync.js';
import { ensureSocketDir, unixSocketListens } from '../store/socket.js';

export const VIRTIOFSD = '/usr/lib/qemu/virtiofsd';

export async function hostHasVirtiofsd(): Promise<boolean> {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return false; // it needs root
  try {
    await access(VIRTIOFSD);
    return true;
  } catch {
    return false;
  }
}

/** Every host path must exist before anything boots. */
export async function checkFolders(machine: string, folders: readonly PlannedFolder[]): Promise<void> {
  for (const [index, folder] of folders.entries()) {
    const info = await stat(folder.host).catch(() => undefined);
    if (info === undefined || !info.isDirectory()) {
      throw new ConfigError(`machine "${machine}": folders[${index}].host ${folder.host} ${info === undefined ? 'does not exist' : 'is not a directory'}`, {
        hint: 'create it, or fix the path (relative paths start at the Vmfile\'s directory)',
      });
    }
  }
}

/**
 * A live folder is the guest's write access to that host directory. Holding the
 * project's .vmfile/ (every machine's private keys, its records) or the Vmfile (which
 * the host runs on every command), it would let the guest take over the host user, so
 * it must be readonly, rsync, or say shareProjectState: true.
 */
export function checkProjectExposure(machine: string, specs: readonly FolderSpec[], planned: readonly PlannedFolder[], project: { dir: string; vmfilePath: string }): void {
  const secrets = [join(project.dir, PROJECT_STATE_DIR), project.vmfilePath];
  for (const [index, folder] of planned.entries()) {
    if (folder.type === 'rsync' || folder.readonly || specs[index]?.shareProjectState === true) continue;
    const exposed = secrets.filter((path) => isWithin(path, folder.host));
    if (exposed.length > 0) {
      throw new ConfigError(`machine "${machine}": folders[${index}] (${folder.type}, writable) would let the guest change ${exposed.join(' and ')}, which hold machine keys and code the host runs`, {
        hint: "set readonly: true, or type: 'rsync', or share a subdirectory; shareProjectState: true allows it on purpose",
      });
    }
  }
}

function isWithin(path: string, dir: string): boolean {
  const inside = relative(dir, path);
  return inside === '' || (!inside.startsWith('..') && !isAbsolute(inside));
}

/** Starts one virtiofsd per virtiofs folder; each exits when its QEMU goes away. */
export async function startVirtiofsd(socketFor: (tag: string) => string, folders: readonly PlannedFolder[]): Promise<{ tag: string; socket: string }[]> {
  const shares = [];
  for (const folder of folders) {
    if (folder.type !== 'virtiofs') continue;
    const socket = socketFor(folder.tag);
    await ensureSocketDir(socket);
    await rm(socket, { force: true });
    await spawnDetached(VIRTIOFSD, [`--socket-path=${socket}`, '-o', `source=${folder.host}`, '-o', 'cache=auto']);
    const deadline = Date.now() + 5000;
    // Listening, not merely created: QEMU connecting in between would be refused and exit.
    while (!(await unixSocketListens(socket))) {
      if (Date.now() > deadline) throw new GuestError(`virtiofsd for ${folder.host} did not start (nothing listens on ${socket})`, { hint: 'run it by hand to see why: ' + VIRTIOFSD });
      await sleep(50);
    }
    shares.push({ tag: folder.tag, socket });
  }
  return shares;
}

/** Mounts virtiofs/9p folders in the guest (each vmup: mounts are not in the guest's fstab). */
export async function mountLiveFolders(session: SshSession, machine: string, folders: readonly PlannedFolder[]): Promise<void> {
  for (const folder of folders) {
    if (folder.type === 'rsync') continue;
    const options = [folder.readonly ? 'ro' : 'rw', ...(folder.type === '9p' ? ['trans=virtio', 'version=9p2000.L', 'msize=262144'] : [])].join(',');
    const fsType = folder.type === '9p' ? '9p' : 'virtiofs';
    const command = [
      shellCommand(['sudo', '-n', 'mkdir', '-p', '--', folder.guest]),
      `{ mountpoint -q ${shellQuote(folder.guest)} || ${shellCommand(['sudo', '-n', 'mount', '-t', fsType, '-o', options, folder.tag, folder.guest])}; }`,
    ].join(' && ');
    const result = await session.capture(command);
    if (result.code !== 0) {
      throw new GuestError(`machine "${machine}": could not mount ${folder.host} at ${folder.guest} (${fsType}): ${result.stderr.trim()}`, {
        hint: fsType === '9p' ? "the box's kernel may lack 9p (Debian's cloud kernel does); use type: 'virtiofs' or 'rsync'" : "use type: 'rsync' for this folder",
      });
    }
  }
}

/**
 * Copies rsync folders into the guest over SSH. A .vmfile directory (keys, disks), of
 * this project or of one nested in the folder, is never copied; see rsync-filter.ts for
 * what else is left out.
 */
export async function rsyncFolders(
  session: SshSession,
  paths: MachinePaths,
  sshOptions: Record<string, string>,
  machine: string,
  user: string,
  folders: readonly PlannedFolder[],
  tell: { notice: (text: string) => void; progress: (text: string) => void } = { notice: () => {}, progress: () => {} },
): Promise<number> {
  const rsyncs = folders.filter((folder) => folder.type === 'rsync');
  if (rsyncs.length === 0) return 0;
  await writeFile(paths.sshConfig, sshConfigBlock(machine, 'vmfile-target', sshOptions), { mode: 0o600 });
  const tool = await guestCopyTool(session, machine, tell.notice, tell.progress);
  for (const folder of rsyncs) {
    const prepare = await session.exec(
      `${shellCommand(['sudo', '-n', 'mkdir', '-p', '--', folder.guest])} && ${shellCommand(['sudo', '-n', 'chown', `${user}:`, '--', folder.guest])}`,
    );
    if (prepare !== 0) throw new GuestError(`machine "${machine}": could not create ${folder.guest} in the guest for the rsync folder`);
    const filters = await rsyncFilterArgs(folder, join(paths.dir, `rsync-excludes-${folder.tag}`));
    if (tool === 'tar') {
      await copyWithTar(session, machine, folder, filters);
      continue;
    }
    await run(
      'rsync',
      [
        '-a',
        '--delete',
        ...filters,
        '-e',
        `ssh -F ${shellQuote(paths.sshConfig)}`,
        `${folder.host.replace(/\/?$/, '/')}`,
        `vmfile-target:${folder.guest.replace(/\/?$/, '/')}`,
      ],
      { purpose: `machine "${machine}": rsync ${folder.host} to ${folder.guest}` },
    );
  }
  return rsyncs.length;
}

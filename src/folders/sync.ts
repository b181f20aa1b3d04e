/**
 * The synced-folder driver: prepare (before QEMU starts: virtiofsd daemons) and
 * enable (after SSH answers: mount live folders, rsync the others). Both are safe to
 * repeat: a mounted folder is left mounted, rsync copies only what changed.
 */
import { access, mkdir, realpath, rm, stat, writeFile } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { run, spawnDetached } from '../exec.js';
import { ConfigError, GuestError } from '../errors.js';
import type { SshSession } from '../ssh/client.js';
import { sshConfigBlock } from '../ssh/config.js';
import { shellCommand, shellQuote } from '../ssh/quote.js';
import { PROJECT_STATE_DIR, type MachinePaths } from '../store/layout.js';
import type { FolderSpec } from '../vmfile/schema.js';
import type { ProvisionStep } from '../vmfile/steps.js';
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
 * project's .vmfile/ (every machine's private keys, its records), a file the host runs
 * (the Vmfile and every module it loaded, an Ansible playbook), or a step's script (run
 * as root in this or another machine), it would let the guest take over the host user or
 * the other machines, so it must be readonly, rsync, or say shareProjectState: true.
 * Paths are compared as real paths: a folder reached through a symlink is no way round.
 */
export async function checkProjectExposure(machine: string, specs: readonly FolderSpec[], planned: readonly PlannedFolder[], project: ExposedProject): Promise<void> {
  await refuseNinePOfState(machine, specs, planned, project);
  const writable = planned.map((folder, index) => ({ folder, index })).filter(({ folder, index }) => folder.type !== 'rsync' && !folder.readonly && specs[index]?.shareProjectState !== true);
  if (writable.length === 0) return;
  const guarded = await Promise.all(guardedPaths(project).map(async (path) => ({ path, real: await realpath(path).catch(() => path) })));
  for (const { folder, index } of writable) {
    const root = await realpath(folder.host).catch(() => folder.host);
    const exposed = guarded.filter(({ real }) => isWithin(real, root)).map(({ path }) => path);
    if (exposed.length > 0) {
      const named = exposed.length <= 4 ? exposed : [...exposed.slice(0, 3), `${exposed.length - 3} more`];
      throw new ConfigError(`machine "${machine}": folders[${index}] (${folder.type}, writable) would let the guest change ${listed(named)}, which hold machine keys, code the host runs or steps' scripts`, {
        hint: "set readonly: true, or type: 'rsync', or share a subdirectory; shareProjectState: true allows it on purpose",
      });
    }
  }
}

/**
 * Even read-only, a live folder must not show the guest .vmfile/ (every machine's private
 * login key). virtiofsd can be made to hide it (startVirtiofsd); a 9p share is served by
 * QEMU itself, which cannot, so such a folder is refused.
 */
async function refuseNinePOfState(machine: string, specs: readonly FolderSpec[], planned: readonly PlannedFolder[], project: ExposedProject): Promise<void> {
  const stateDir = join(project.dir, PROJECT_STATE_DIR);
  const state = await realpath(stateDir).catch(() => stateDir);
  for (const [index, folder] of planned.entries()) {
    if (folder.type !== '9p' || specs[index]?.shareProjectState === true) continue;
    if (!isWithin(state, await realpath(folder.host).catch(() => folder.host))) continue;
    throw new ConfigError(`machine "${machine}": folders[${index}] (9p) would show the guest ${stateDir}, which holds every machine's private login key; QEMU's 9p server cannot leave it out`, {
      hint: "use type: 'rsync' (never copies .vmfile/) or type: 'virtiofs' (serves it empty), share a subdirectory, or set shareProjectState: true to allow it on purpose",
    });
  }
}

/** What checkProjectExposure needs of a Project (vmfile/config.ts). */
export interface ExposedProject {
  dir: string;
  vmfilePath: string;
  loadedFiles?: readonly string[];
  machines?: readonly { provision: readonly ProvisionStep[] }[];
}

function guardedPaths(project: ExposedProject): string[] {
  const steps = (project.machines ?? []).flatMap((machine) => machine.provision);
  const stepFiles = steps.flatMap((step) => (step.kind === 'ansible' ? [step.playbook] : step.kind === 'script' ? [step.script] : [])).map((file) => resolve(project.dir, file));
  return [...new Set([join(project.dir, PROJECT_STATE_DIR), project.vmfilePath, ...(project.loadedFiles ?? []), ...stepFiles])];
}

function listed(items: readonly string[]): string {
  return items.length <= 1 ? (items[0] ?? '') : `${items.slice(0, -1).join(', ')} and ${items.at(-1) ?? ''}`;
}

function isWithin(path: string, dir: string): boolean {
  const inside = relative(dir, path);
  return inside === '' || (!inside.startsWith('..') && !isAbsolute(inside));
}

/**
 * Starts one virtiofsd per virtiofs folder; each exits when its QEMU goes away. What a
 * folder must not show (its `hidden`: the project's .vmfile/) is served empty
 * (virtiofsdArgv).
 */
export async function startVirtiofsd(socketFor: (tag: string) => string, folders: readonly PlannedFolder[]): Promise<{ tag: string; socket: string }[]> {
  const shares = [];
  const real = (path: string) => realpath(path).catch(() => path);
  for (const folder of folders) {
    if (folder.type !== 'virtiofs') continue;
    const socket = socketFor(folder.tag);
    await ensureSocketDir(socket);
    await rm(socket, { force: true });
    const argv = virtiofsdArgv({ host: await real(folder.host), readonly: folder.readonly, hidden: await Promise.all((folder.hidden ?? []).map(real)) }, socket);
    if (argv[0] !== VIRTIOFSD) await mkdir(viewOf(socket), { recursive: true, mode: 0o700 });
    const [program = VIRTIOFSD, ...args] = argv;
    await spawnDetached(program, args);
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

/**
 * virtiofsd has no option to leave a directory out or to refuse writes, and it runs as
 * root, so neither file modes nor the guest's `ro` mount keep a guest out of .vmfile/ or
 * from writing a read-only folder. So such a share is served from a view made for it in
 * a mount namespace of virtiofsd's own (unshare): the folder bound onto an empty
 * directory beside the socket (never over the real path, where the socket is), that
 * bind made read-only for a readonly folder, and an empty read-only tmpfs over what the
 * plan says it must not show (`hidden`: the project's .vmfile/). virtiofsd's sandbox
 * binds its source with what is mounted under it, so the guest sees exactly that; the
 * host's view is untouched, and the namespace ends with virtiofsd. Only the first of
 * `hidden` inside the share is hidden (the plan gives one). Real paths. Pure.
 */
export function virtiofsdArgv(folder: { host: string; readonly: boolean; hidden: readonly string[] }, socket: string): string[] {
  const hidden = folder.hidden.find((path) => isWithin(path, folder.host));
  const served = (source: string) => [VIRTIOFSD, `--socket-path=${socket}`, '-o', `source=${source}`, '-o', 'cache=auto'];
  if (hidden === undefined && !folder.readonly) return served(folder.host);
  const view = viewOf(socket);
  // Paths are arguments, never text in the script.
  const script = [
    'mount --rbind -- "$1" "$2"',
    'if [ "$3" = ro ]; then mount -o remount,bind,ro -- "$2"; fi',
    'if [ -n "$4" ]; then mount -t tmpfs -o ro,nosuid,nodev,noexec,size=4k,mode=0555 vmfile-hidden "$4"; fi',
    'shift 4',
    'exec "$@"',
  ].join('; ');
  const inView = hidden === undefined ? '' : join(view, relative(folder.host, hidden));
  return ['unshare', '--mount', '--propagation', 'private', '--', '/bin/sh', '-euc', script, 'vmfile-virtiofsd', folder.host, view, folder.readonly ? 'ro' : 'rw', inView, ...served(view)];
}

/** Where a share's view is mounted in virtiofsd's namespace: an empty directory beside its socket. */
function viewOf(socket: string): string {
  return `${socket}.view`;
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

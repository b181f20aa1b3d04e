/**
 * Every on-disk name vmfile uses, in one place.
 *
 * Global store (~/.vmfile, or $VMFILE_HOME):
 *   boxes/<name>/<version>/box.json, disk.qcow2, kernel, initrd,
 *                             disk.verified.json, kernel.verified.json, initrd.verified.json
 *                             (digest caches, see store/digest.ts)
 *                             <name> is boxDirName(name): "org/name" is org-VAGRANTSLASH-name
 *   tmp/                      staging for imports and builds (same filesystem as boxes/,
 *                             so a finished box is moved into place atomically)
 *   downloads/<key>.part      a box file being downloaded, kept across runs so that an
 *                             interrupted download resumes (.part.json: its validators;
 *                             .lock: held while a download runs); <key> hashes the URL
 *   projects/<hash>.json      one per project that ran vmup (global-status; see store/projects.ts)
 *   warm/<key>/               a warm state: a generic machine's files (its disk is the
 *                             state's), memory.state, warm.json; <key>.partial while
 *                             it is being made, <key>.lock while made or removed
 * Per project (next to the Vmfile):
 *   .vmfile/machines/<machine>/  machine.json, provisioned.json, keys, seed/, lock, and
 *                                its driver's own files (driver/qemu/files.ts: the disk,
 *                                console log, pid file, sockets; driver/libvirt/files.ts)
 *
 * Unix sockets go where store/socket.ts says (one limit, one fallback directory).
 */
import { createHash } from 'node:crypto';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { LOCK_FILE_NAME } from '../vmfile/names.js';
import { socketPath } from './socket.js';

export function vmfileHome(env: NodeJS.ProcessEnv = process.env): string {
  const configured = env['VMFILE_HOME'];
  return configured !== undefined && configured !== '' ? configured : join(homedir(), '.vmfile');
}

export interface BoxPaths {
  dir: string;
  metadata: string;
  disk: string;
  kernel: string;
  initrd: string;
  /** The disk's sha256 as last computed, with the file facts it was computed for. */
  diskDigestCache: string;
  kernelDigestCache: string;
  initrdDigestCache: string;
}

export function boxesDir(home: string): string {
  return join(home, 'boxes');
}

/**
 * The directory name of a box in the store. Vagrant-style names ("org/name") hold a
 * slash, which must not become a directory level: it is spelt -VAGRANTSLASH-, as Vagrant
 * does, and box names may not contain the word VAGRANTSLASH at all (BOX_NAME_PATTERN), so
 * every -VAGRANTSLASH- in a directory name was a slash and two names never share one.
 * Every path made from a box name goes through here.
 */
export function boxDirName(name: string): string {
  return name.replaceAll('/', BOX_NAME_SLASH);
}

export const BOX_NAME_SLASH = '-VAGRANTSLASH-';

export function boxDir(home: string, name: string): string {
  return join(boxesDir(home), boxDirName(name));
}

export function boxPaths(home: string, name: string, version: string): BoxPaths {
  const dir = join(boxDir(home, name), version);
  return {
    dir,
    metadata: join(dir, BOX_METADATA_FILE),
    disk: join(dir, BOX_DISK_FILE),
    kernel: join(dir, BOX_KERNEL_FILE),
    initrd: join(dir, BOX_INITRD_FILE),
    diskDigestCache: join(dir, DISK_DIGEST_CACHE_FILE),
    kernelDigestCache: join(dir, KERNEL_DIGEST_CACHE_FILE),
    initrdDigestCache: join(dir, INITRD_DIGEST_CACHE_FILE),
  };
}

/** The index of projects on this host, one file each, named by a hash of the project directory. */
export function projectsIndexDir(home: string): string {
  return join(home, 'projects');
}

export function projectIndexFile(home: string, projectDir: string): string {
  return join(projectsIndexDir(home), `${createHash('sha256').update(projectDir).digest('hex').slice(0, 24)}.json`);
}

/** Partial downloads of box files, resumed across runs (see box/download.ts). */
export function downloadsDir(home: string): string {
  return join(home, 'downloads');
}

export interface DownloadPaths {
  /** The bytes received so far. */
  partial: string;
  /** The URL and the validators (ETag, Last-Modified, size) the bytes belong to. */
  meta: string;
  /** Held while a download runs, so two vmfile processes never append to one file. */
  lock: string;
}

/** Named by a hash of the URL: the same URL resumes the same file, whatever the box is called. */
export function downloadPaths(home: string, url: string): DownloadPaths {
  return downloadPathsOf(home, createHash('sha256').update(url).digest('hex').slice(0, 32));
}

/** A download's files from its key (the name of its .part file without the suffix). */
export function downloadPathsOf(home: string, key: string): DownloadPaths {
  const base = join(downloadsDir(home), key);
  return { partial: `${base}${PARTIAL_SUFFIX}`, meta: `${base}${PARTIAL_SUFFIX}.json`, lock: `${base}.lock` };
}

export const PARTIAL_SUFFIX = '.part';

/** Scratch space for imports and builds; lives inside the home so renames are atomic. */
export function stagingDir(home: string): string {
  return join(home, 'tmp');
}

export const BOX_METADATA_FILE = 'box.json';
export const BOX_DISK_FILE = 'disk.qcow2';
export const BOX_KERNEL_FILE = 'kernel';
export const BOX_INITRD_FILE = 'initrd';
export const DISK_DIGEST_CACHE_FILE = 'disk.verified.json';
export const KERNEL_DIGEST_CACHE_FILE = 'kernel.verified.json';
export const INITRD_DIGEST_CACHE_FILE = 'initrd.verified.json';
/** A box recipe under boxes/<name>/ in the vmfile package. */
export const RECIPE_FILE = 'recipe.json';
/** Scratch raw image while a box is built or packaged (inside its staging directory). */
export const STAGING_RAW_DISK = 'disk.raw';
/** Members of a Vagrant libvirt .box (Vagrant's names, not ours). */
export const VAGRANT_METADATA_FILE = 'metadata.json';
export const VAGRANT_DISK_FILE = 'box.img';

/**
 * A machine's files that every driver shares: its record, keys, seed and lock. Each
 * driver names its own files in the same directory (driver/qemu/files.ts,
 * driver/libvirt/files.ts).
 */
export interface MachinePaths {
  dir: string;
  /** What vmfile knows about the machine (box, ports, accelerator, creation time). */
  state: string;
  provisioned: string;
  privateKey: string;
  publicKey: string;
  hostPrivateKey: string;
  hostPublicKey: string;
  knownHosts: string;
  seedDir: string;
  /** OpenSSH's connection master for this machine (ControlPath): one key exchange per boot. */
  sshControl: string;
  lock: string;
  /** OpenSSH client config for this machine (used by rsync). */
  sshConfig: string;
  /** Copies of a warm state's login key and host key, kept until the machine has become itself. */
  warmLoginKey: string;
  warmHostKey: string;
}

/** Per-project state, next to the Vmfile; never synced into a guest or committed. */
export const PROJECT_STATE_DIR = '.vmfile';

export function projectStateDir(projectDir: string): string {
  return join(projectDir, PROJECT_STATE_DIR);
}

/** Keeps .vmfile/ out of version control. */
export function projectGitignore(projectDir: string): string {
  return join(projectStateDir(projectDir), '.gitignore');
}

/** Held while a project's network switch is checked and started, so only one ever starts. */
export function networkLock(projectDir: string): string {
  return join(projectStateDir(projectDir), 'network.lock');
}

/** The private network's switch socket, shared by a project's machines. */
export function networkSocket(projectDir: string): string {
  return socketPath(projectStateDir(projectDir), 'network.sock');
}

export function machinesDir(projectDir: string): string {
  return join(projectStateDir(projectDir), 'machines');
}

export function machinePaths(projectDir: string, machine: string): MachinePaths {
  return machinePathsIn(join(machinesDir(projectDir), machine));
}

/** A machine's files in `dir` (a project's machine, or the machine a warm state is made from). */
export function machinePathsIn(dir: string): MachinePaths {
  return {
    dir,
    state: join(dir, 'machine.json'),
    provisioned: join(dir, 'provisioned.json'),
    privateKey: join(dir, 'id_ed25519'),
    publicKey: join(dir, 'id_ed25519.pub'),
    hostPrivateKey: join(dir, 'ssh_host_ed25519_key'),
    hostPublicKey: join(dir, 'ssh_host_ed25519_key.pub'),
    knownHosts: join(dir, 'known_hosts'),
    seedDir: join(dir, 'seed'),
    // OpenSSH binds the master at this path plus a 17-byte temporary suffix, then renames it.
    sshControl: socketPath(dir, 'ssh.sock', 17),
    lock: join(dir, 'lock'),
    sshConfig: join(dir, 'ssh_config'),
    warmLoginKey: join(dir, 'warm_id_ed25519'),
    warmHostKey: join(dir, 'warm_ssh_host_ed25519_key.pub'),
  };
}

/** Warm states: a box booted once per machine shape, its memory and disk kept (lifecycle/warm.ts). */
export function warmStatesDir(home: string): string {
  return join(home, 'warm');
}

export interface WarmPaths {
  /** The state's directory; while it is being made, `<key>.partial`, renamed once complete. */
  dir: string;
  /** The generic machine it was made from: its overlay is the state's disk, its keys log in. */
  machine: MachinePaths;
  /** The migration stream: memory and devices. */
  memory: string;
  /** warm.json, written last: what the state is, for whom. */
  record: string;
  /** Held while the state is made or removed. */
  lock: string;
}

export function warmPaths(home: string, key: string, partial = false): WarmPaths {
  const dir = join(warmStatesDir(home), partial ? `${key}.partial` : key);
  return { dir, machine: machinePathsIn(dir), memory: join(dir, 'memory.state'), record: join(dir, 'warm.json'), lock: join(warmStatesDir(home), `${key}.lock`) };
}

export const VMFILE_NAMES = ['Vmfile.ts', 'Vmfile.mts', 'Vmfile.js', 'Vmfile.mjs'] as const;

/** Vmfile.lock, next to the Vmfile: committed with it. */
export function lockFilePath(projectDir: string): string {
  return join(projectDir, LOCK_FILE_NAME);
}

/** Internal snapshot that holds a suspended machine's memory; never a user snapshot name. */
export const SUSPEND_SNAPSHOT = 'vmfile-suspend';

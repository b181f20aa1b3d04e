/**
 * Removes a machine's identity from a copy of its disk before it is handed over as a
 * box, so that a machine made from the box shares no secret, key or identity with the
 * original. The image is edited offline with debugfs (no boot, no mount).
 *
 * Why each item: cloud-init stores each instance's user-data under /var/lib/cloud,
 * and vmfile's user-data holds the machine's SSH *host private key*; cloud-init appends
 * (never replaces) authorized keys, so the original's login key would still open the new
 * machine; host keys, machine-id, the systemd random seed and credential secret, DHCP
 * leases and the journal (named by machine-id) identify the original. This is what
 * `cloud-init clean --logs --machine-id` plus removing SSH keys would do, done offline.
 * A new machine gets a new instance id, so cloud-init treats it as a first boot and
 * sets up users, keys and hostname afresh; systemd creates a new machine-id. The
 * private network's block in /etc/hosts names the original project's machines; it goes.
 * The login user's home is the one the image's /etc/passwd gives.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { UserError } from '../errors.js';
import { HOSTS_BLOCK_BEGIN, withoutHostsBlock } from '../vmfile/private-ip.js';
import { checkFileSystem, debugfsQuote, dumpFile, editImage, fileSize, isDirectory, isExtImage, listDir, writeFileRequests, type DirEntry } from './debugfs.js';

export interface ScrubPlan {
  /** Directories whose contents are removed (the directory itself is kept). */
  emptyDirs: string[];
  /** Files (or symlinks) removed when present. */
  files: string[];
  /** Directories in which files matching a pattern are removed. */
  patterns: { dir: string; match: RegExp }[];
  /** Files replaced by an empty file (mode 0444, root), when present. */
  emptied: string[];
}

/** Shell and tool histories: what was typed in the original machine. */
const HISTORIES = ['.bash_history', '.python_history', '.lesshst', '.viminfo', '.wget-hsts'];

/** What to remove for a box whose login user is `user`, with home directory `home`. Pure. */
export function scrubPlan(user: string, home = defaultHome(user)): ScrubPlan {
  return {
    emptyDirs: ['/var/lib/cloud', '/var/log/journal', '/var/log/apt'],
    files: [
      `${home}/.ssh/authorized_keys`,
      '/root/.ssh/authorized_keys',
      ...HISTORIES.flatMap((name) => [`${home}/${name}`, `/root/${name}`]),
      '/var/lib/dbus/machine-id',
      '/var/lib/systemd/random-seed',
      '/var/lib/systemd/credential.secret',
      '/var/log/cloud-init.log',
      '/var/log/cloud-init-output.log',
      '/var/log/dpkg.log',
      '/var/log/alternatives.log',
    ],
    patterns: [
      { dir: '/etc/ssh', match: /^ssh_host_/ },
      { dir: '/var/lib/dhcp', match: /\.leases?$/ },
      // Provisioning scratch files a step left behind (they hold the step's script).
      { dir: '/tmp', match: /^vmfile-/ },
      { dir: '/var/tmp', match: /^vmfile-/ },
    ],
    emptied: ['/etc/machine-id'],
  };
}

function defaultHome(user: string): string {
  return user === 'root' ? '/root' : `/home/${user}`;
}

/** The user's home directory as the image's /etc/passwd says, when it says something usable. Pure. */
export function homeFromPasswd(passwd: string, user: string): string {
  for (const line of passwd.split('\n')) {
    const fields = line.split(':');
    const home = fields[5];
    if (fields[0] !== user || home === undefined) continue;
    // Taken from the image: only a plain absolute path is used, anything else falls back.
    if (/^\/[A-Za-z0-9._/-]*$/.test(home) && !home.split('/').includes('..') && home !== '/') return home.replace(/\/+$/, '');
  }
  return defaultHome(user);
}

/** debugfs requests that remove `path`'s contents, deepest first. */
async function removeTree(raw: string, dir: string): Promise<string[]> {
  const requests: string[] = [];
  for (const entry of await listDir(raw, dir)) {
    const path = `${dir}/${entry.name}`;
    if (isDirectory(entry)) {
      requests.push(...(await removeTree(raw, path)), `rmdir ${debugfsQuote(path)}`);
    } else {
      requests.push(`rm ${debugfsQuote(path)}`);
    }
  }
  return requests;
}

async function present(raw: string, path: string): Promise<boolean> {
  const slash = path.lastIndexOf('/');
  const entries = await listDir(raw, path.slice(0, slash) || '/');
  return entries.some((entry: DirEntry) => entry.name === path.slice(slash + 1));
}

/**
 * Scrubs the raw ext4 image in place and checks the result: every item is read back
 * and e2fsck must find the file system consistent. Refuses images that are not a bare
 * ext4 file system (a partitioned cloud image) rather than ship one unscrubbed.
 */
export async function scrubImage(raw: string, options: { user: string; label: string; sourceDateEpoch?: number }): Promise<string[]> {
  if (!(await isExtImage(raw))) {
    throw new UserError(`${options.label}: the disk is not a bare ext4 file system (a partitioned image?), so vmfile cannot remove the machine's keys and identity from it offline`, {
      hint: 'packaging works for machines made from boxes built by vmfile (vmfile box build); nothing was written',
    });
  }
  // A machine killed with -9 leaves a journal to replay; edits must start from a clean file system.
  await checkFileSystem(raw, { repair: true, purpose: `${options.label}: check the disk before scrubbing it` });
  const scratch = await mkdtemp(join(tmpdir(), 'vmfile-scrub-'));
  try {
    const plan = scrubPlan(options.user, homeFromPasswd(await readImageFile(raw, '/etc/passwd', scratch), options.user));
    const epoch = options.sourceDateEpoch ?? 0;
    const requests: string[] = [];
    const removed: string[] = [];
    for (const dir of plan.emptyDirs) {
      const tree = await removeTree(raw, dir);
      if (tree.length > 0) removed.push(`${dir}/*`);
      requests.push(...tree);
    }
    for (const file of plan.files) {
      if (await present(raw, file)) {
        requests.push(`rm ${debugfsQuote(file)}`);
        removed.push(file);
      }
    }
    for (const { dir, match } of plan.patterns) {
      for (const entry of await listDir(raw, dir)) {
        if (!match.test(entry.name) || isDirectory(entry)) continue;
        requests.push(`rm ${debugfsQuote(`${dir}/${entry.name}`)}`);
        removed.push(`${dir}/${entry.name}`);
      }
    }
    for (const file of plan.emptied) {
      if ((await fileSize(raw, file)) === undefined) continue;
      requests.push(...replaceFile(file, await writeScratch(scratch, 'empty', ''), 0o444, epoch));
      removed.push(`${file} (emptied)`);
    }
    // The private network's names and addresses are the original project's, not the box's.
    const hosts = await readImageFile(raw, HOSTS, scratch);
    if (hosts.includes(HOSTS_BLOCK_BEGIN)) {
      requests.push(...replaceFile(HOSTS, await writeScratch(scratch, 'hosts', withoutHostsBlock(hosts)), 0o644, epoch));
      removed.push(`${HOSTS} (vmfile private network block)`);
    }
    await editImage(raw, requests);
    await verifyScrubbed(raw, plan, options.label, scratch);
    return removed;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

const HOSTS = '/etc/hosts';

/** A file's content from the image; '' when it is not there. */
async function readImageFile(raw: string, path: string, scratch: string): Promise<string> {
  const local = join(scratch, `read-${path.replaceAll('/', '_')}`);
  if (!(await dumpFile(raw, path, local))) return '';
  return readFile(local, 'utf8').catch(() => '');
}

async function writeScratch(scratch: string, name: string, content: string): Promise<string> {
  const path = join(scratch, name);
  await writeFile(path, content);
  return path;
}

/** debugfs requests that replace `file` with the local file `source`: owned by root, with `mode` and the given times. */
function replaceFile(file: string, source: string, mode: number, epoch: number): string[] {
  return [`rm ${debugfsQuote(file)}`, ...writeFileRequests(file, source, mode, epoch)];
}

/** Reads the image again: debugfs reports failures on stderr with status 0, so trust only what is there. */
async function verifyScrubbed(raw: string, plan: ScrubPlan, label: string, scratch: string): Promise<void> {
  const left: string[] = [];
  for (const dir of plan.emptyDirs) if ((await listDir(raw, dir)).length > 0) left.push(`${dir}/*`);
  for (const file of plan.files) if (await present(raw, file)) left.push(file);
  for (const { dir, match } of plan.patterns) {
    for (const entry of await listDir(raw, dir)) if (match.test(entry.name) && !isDirectory(entry)) left.push(`${dir}/${entry.name}`);
  }
  for (const file of plan.emptied) {
    const size = await fileSize(raw, file);
    if (size !== undefined && size > 0) left.push(file);
  }
  if ((await readImageFile(raw, HOSTS, scratch)).includes(HOSTS_BLOCK_BEGIN)) left.push(`the private network block in ${HOSTS}`);
  if (left.length > 0) {
    throw new UserError(`${label}: could not remove ${left.join(', ')} from the disk copy; nothing was written`, { hint: 'run again with --debug and report it' });
  }
  await checkFileSystem(raw, { repair: false, purpose: `${label}: check the scrubbed disk` });
}

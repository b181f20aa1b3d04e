/**
 * rsync folders on a guest without rsync, which official cloud images and Vagrant boxes
 * often lack. As Vagrant does, rsync is first installed with the guest's own package
 * manager (apt-get, dnf, yum, zypper, apk or pacman). When that cannot work (no package
 * manager, no network, no package sources), the folder is copied as a tar archive over
 * SSH instead: the same files (host rsync lists them, with the folder's filters), but
 * every sync copies everything, and files deleted on the host stay in the guest. Only
 * when the guest has neither rsync nor tar does the sync fail, saying so.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { run } from '../exec.js';
import { GuestError, lastLines } from '../errors.js';
import type { SshSession } from '../ssh/client.js';
import { shellCommand, shellQuote } from '../ssh/quote.js';
import type { PlannedFolder } from './plan.js';

export type CopyTool = 'rsync' | 'tar';

const INSTALL_RSYNC = `
run() { if command -v timeout >/dev/null; then timeout 600 "$@"; else "$@"; fi; }
if command -v apt-get >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  run apt-get install -y -q rsync || { run apt-get update -q && run apt-get install -y -q rsync; }
elif command -v dnf >/dev/null; then run dnf install -y rsync
elif command -v yum >/dev/null; then run yum install -y rsync
elif command -v zypper >/dev/null; then run zypper --non-interactive install rsync
elif command -v apk >/dev/null; then run apk add rsync
elif command -v pacman >/dev/null; then run pacman -S --noconfirm rsync
else echo "no package manager found (apt-get, dnf, yum, zypper, apk, pacman)" >&2; exit 127
fi`;

/** rsync if the guest has it or it can be installed, else tar; a GuestError when neither. */
export async function guestCopyTool(session: SshSession, machine: string, notice: (text: string) => void, progress: (text: string) => void): Promise<CopyTool> {
  if ((await session.exec('command -v rsync >/dev/null')) === 0) return 'rsync';
  progress('the guest has no rsync: installing it with its package manager');
  const install = await session.capture(shellCommand(['sudo', '-n', 'sh', '-c', INSTALL_RSYNC]));
  if (install.code === 0 && (await session.exec('command -v rsync >/dev/null')) === 0) {
    notice(`machine "${machine}": the guest had no rsync; installed it with its package manager, as Vagrant does`);
    return 'rsync';
  }
  const why = lastLines(install.stderr, 1).trim() || lastLines(install.stdout, 1).trim() || `exit ${install.code}`;
  if ((await session.exec('command -v tar >/dev/null')) === 0) {
    notice(`machine "${machine}": the guest has no rsync and it could not be installed (${why}); copying folders with tar over SSH instead: each sync copies everything, and files deleted on the host stay in the guest`);
    return 'tar';
  }
  throw new GuestError(`machine "${machine}": cannot sync folders: the guest has neither rsync nor tar, and installing rsync failed (${why})`, {
    hint: "install rsync in the box, or give the machine folders: [] (or a virtiofs folder) in the Vmfile",
  });
}

/**
 * Copies the folder into the guest as a tar archive, the files chosen exactly as rsync
 * would choose them with `filterArgs` (a dry run lists them). Extracted as the login
 * user, into a directory that user owns.
 */
export async function copyWithTar(session: SshSession, machine: string, folder: PlannedFolder, filterArgs: readonly string[]): Promise<void> {
  const scratch = await mkdtemp(join(tmpdir(), 'vmfile-tar-'));
  const remote = `/tmp/vmfile-folder-${randomBytes(8).toString('hex')}.tar`;
  try {
    const names = await listSyncedFiles(folder.host, filterArgs, scratch, `machine "${machine}"`);
    const list = join(scratch, 'files');
    await writeFile(list, names.map((name) => `${name.replace(/\/$/, '')}\0`).join(''), { mode: 0o600 });
    const archive = join(scratch, 'folder.tar');
    await run('tar', ['--create', `--file=${archive}`, `--directory=${folder.host}`, '--no-recursion', '--null', `--files-from=${list}`], {
      purpose: `machine "${machine}": pack ${folder.host}`,
    });
    await session.upload(archive, remote);
    const result = await session.capture(`tar -x -f ${shellQuote(remote)} -C ${shellQuote(folder.guest)}; status=$?; rm -f ${shellQuote(remote)}; exit $status`);
    if (result.code !== 0) {
      throw new GuestError(`machine "${machine}": could not unpack ${folder.host} into ${folder.guest} with tar: ${result.stderr.trim().slice(-400)}`, {
        hint: 'check the free space in the guest (df -h) and that the login user may write there',
      });
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/**
 * What rsync would copy of `host` with `filterArgs`, relative to it (directories end in
 * "/"), listed by a dry run into an empty directory made in `scratch`. `who` names the
 * operation in messages.
 */
export async function listSyncedFiles(host: string, filterArgs: readonly string[], scratch: string, who: string): Promise<string[]> {
  const empty = await mkdtemp(join(scratch, 'empty-'));
  // -8: only control characters are escaped in the names (\#ooo), never UTF-8.
  const listed = await run('rsync', ['-a', '-8', '--dry-run', '--out-format=%n', ...filterArgs, `${host.replace(/\/?$/, '/')}`, `${empty}/`], {
    purpose: `${who}: list the files of ${host}`,
  });
  return parseRsyncNames(listed.stdout).filter((name) => name !== './');
}

/** rsync's --out-format=%n lines (with -8), its \#ooo escapes of control characters in names undone. Pure. */
export function parseRsyncNames(output: string): string[] {
  return output
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => line.replace(/\\#([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8))));
}


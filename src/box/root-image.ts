/**
 * A box's root file system, made from a directory tree with `mke2fs -d`: no loop device,
 * no mount. The image depends only on the tree's names, contents, modes, owners, links
 * and modification times, never on the build host's file system or the hour it ran:
 * - directory order and inode numbers: mke2fs (e2fsprogs 1.47) reads each directory with
 *   scandir and alphasort, not in the host's readdir order (hash order on ext4, newest
 *   first on tmpfs, B-tree order on xfs and btrfs), and numbers inodes in that walk;
 *   the directory hash seed and the UUID are the recipe's;
 * - extended attributes: those of the tree, not the host file system's own (see
 *   withoutSysAdmin), in name order, not the order the host lists them in
 *   (image-attributes.ts);
 * - e2fsprogs' count of bytes written, which differs by host: cleared (forgetWriteCount);
 * - times: mtimes are clamped down to the epoch (package files keep their own dates),
 *   atimes set to it, and, since mke2fs copies ctime and nothing in user space can set
 *   it, every inode's ctime and atime are rewritten in the image with debugfs;
 *   E2FSPROGS_FAKE_TIME fixes the superblock's and the inodes' creation times.
 * test/unit/box/root-image.test.ts builds one tree on ext4 with another hash seed,
 * tmpfs, xfs and btrfs, in different orders and at different times, and compares.
 */
import { lstat, lutimes, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../exec.js';
import { clampInodeTimes, fakeTimeEnv, imageInodes } from './debugfs.js';
import { sortImageAttributes } from './image-attributes.js';

export interface RootImage {
  /** The file system's UUID and directory hash seed, fixed by the recipe. */
  uuid: string;
  hashSeed: string;
  /** The image's size in bytes. */
  size: number;
  /** SOURCE_DATE_EPOCH: no time in the image is later. */
  epoch: number;
  /** Names what is made, in an error. */
  purpose: string;
}

/** Makes the ext4 image `raw` from `tree`, clamping the tree's times first (it changes them in place). */
export async function makeRootImage(tree: string, raw: string, image: RootImage): Promise<void> {
  await clampTreeTimes(tree, image.epoch);
  const [command, ...prefix] = withoutSysAdmin('mke2fs');
  await run(
    command ?? 'mke2fs',
    [...prefix, '-q', '-t', 'ext4', '-L', 'root', '-U', image.uuid, '-E', `root_owner=0:0,hash_seed=${image.hashSeed}`, '-d', tree, raw, `${Math.floor(image.size / 1024)}k`],
    { purpose: image.purpose, env: fakeTimeEnv(image.epoch) },
  );
  const inodes = await imageInodes(raw, image.epoch);
  await sortImageAttributes(raw, inodes, image.epoch);
  await clampInodeTimes(raw, inodes, image.epoch);
  await forgetWriteCount(raw, image.epoch);
}

/**
 * e2fsprogs keeps a lifetime count of kilobytes written in every superblock copy, and
 * mke2fs -d writes a different amount from the same tree on different hosts (measured:
 * a build on xfs differed from one on ext4 in that count alone). It is a statistic, not
 * content: set to 0 with debugfs (e2fsprogs stops counting at 0), then written to every
 * backup superblock by a tune2fs that changes nothing (-c -1, as mke2fs made it).
 */
async function forgetWriteCount(raw: string, epoch: number): Promise<void> {
  const env = fakeTimeEnv(epoch);
  await run('debugfs', ['-w', '-R', 'ssv kbytes_written 0', raw], { purpose: `clear the write count of ${raw}`, env });
  await run('tune2fs', ['-c', '-1', raw], { purpose: `write the superblock copies of ${raw}`, env });
}

/**
 * mke2fs copies every extended attribute the tree's files list, and for a process with
 * CAP_SYS_ADMIN that includes the host file system's own `trusted.*` ones: xfs lists each
 * POSIX ACL a second time as trusted.SGI_ACL_FILE / SGI_ACL_DEFAULT (systemd puts ACLs on
 * /var/log/journal), which gave the box an extra attribute block on an xfs build host.
 * Without CAP_SYS_ADMIN those are not listed; the ACLs themselves (system.posix_acl_*)
 * and file capabilities (security.capability) still are. Root keeps its other
 * capabilities, so it still reads every file.
 */
function withoutSysAdmin(command: string): string[] {
  if (process.getuid?.() !== 0) return [command];
  return ['setpriv', '--inh-caps=-sys_admin', '--bounding-set=-sys_admin', '--', command];
}

/** Sets atime to `epoch` and clamps mtime to at most `epoch` for everything in `dir` (symlinks themselves, not their targets). */
async function clampTreeTimes(dir: string, epoch: number): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      await clampTreeTimes(path, epoch);
      continue;
    }
    const info = await lstat(path);
    await lutimes(path, epoch, Math.min(info.mtimeMs / 1000, epoch));
  }
  // The directory last: changing its children's times does not touch it, but this keeps the order obvious.
  const info = await lstat(dir);
  await lutimes(dir, epoch, Math.min(info.mtimeMs / 1000, epoch));
}

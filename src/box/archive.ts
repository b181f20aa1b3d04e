/**
 * The vmfile box file (`.box`): an uncompressed tar holding box.json first, then
 * disk.qcow2 and, for boxes that boot a kernel directly, kernel and initrd. box.json
 * records the disk's sha256, so `vmfile box add` verifies the disk it unpacks. Owners
 * and times in the tar are fixed, so the same box always makes the same file.
 */
import { rename, rm } from 'node:fs/promises';
import { run } from '../exec.js';
import { BOX_DISK_FILE, BOX_INITRD_FILE, BOX_KERNEL_FILE, BOX_METADATA_FILE } from '../store/layout.js';
import type { BoxMetadata } from '../vmfile/box-metadata.js';

/** The files of a box, box.json first. Pure. */
export function archiveMembers(metadata: BoxMetadata): string[] {
  const members = [BOX_METADATA_FILE, BOX_DISK_FILE];
  if (metadata.boot.type === 'kernel') {
    members.push(BOX_KERNEL_FILE);
    if (metadata.boot.initrd !== undefined) members.push(BOX_INITRD_FILE);
  }
  return members;
}

/** Writes `dir`'s box files to `output` (complete or not at all: written aside, then renamed). */
export async function writeBoxArchive(dir: string, metadata: BoxMetadata, output: string, options: { mtime: number }): Promise<void> {
  await writeArchive(dir, archiveMembers(metadata), output, options);
}

/** Writes the files `members` of `dir` to the tar `output`, root's, with fixed times and modes (`mode`, chmod's symbolic form; default u=rw,go=r), whole or not at all. */
export async function writeArchive(dir: string, members: readonly string[], output: string, options: { mtime: number; mode?: string }): Promise<void> {
  const partial = `${output}.partial-${process.pid}`;
  try {
    await run(
      'tar',
      ['--create', `--file=${partial}`, `--directory=${dir}`, '--format=gnu', '--owner=0', '--group=0', '--numeric-owner', `--mtime=@${options.mtime}`, `--mode=${options.mode ?? 'u=rw,go=r'}`, '--', ...members],
      { purpose: `write ${output}` },
    );
    await rename(partial, output);
  } catch (error) {
    await rm(partial, { force: true });
    throw error;
  }
}

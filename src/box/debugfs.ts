/**
 * Reading and editing a raw ext2/3/4 image with e2fsprogs' debugfs: no loop device, no
 * mount, no root-only kernel interface, so it works wherever the box build works.
 * debugfs reports most failures on stderr with exit status 0, so callers check results
 * by reading the image again rather than trusting the exit status.
 */
import { open } from 'node:fs/promises';
import { run } from '../exec.js';
import { UserError } from '../errors.js';

/** The ext2/3/4 superblock magic 0xEF53, little-endian at byte 1080 of the file system. */
export function isExtSuperblock(head: Buffer): boolean {
  return head.length >= 1082 && head[1080] === 0x53 && head[1081] === 0xef;
}

/** Whether the raw image starts with an ext2/3/4 file system (not a partition table). */
export async function isExtImage(raw: string): Promise<boolean> {
  const handle = await open(raw, 'r');
  try {
    const head = Buffer.alloc(2048);
    const { bytesRead } = await handle.read(head, 0, head.length, 0);
    return isExtSuperblock(head.subarray(0, bytesRead));
  } finally {
    await handle.close();
  }
}

export interface DirEntry {
  name: string;
  inode: number;
  /** The inode's mode, type bits included (0o40755 is a directory). */
  mode: number;
  size: number;
}

export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;

/** Parses `debugfs -R "ls -p DIR"`: lines like `/405/040755/0/0/ssh/4096/`, without . and .. */
export function parseListing(text: string): DirEntry[] {
  const entries: DirEntry[] = [];
  for (const line of text.split('\n')) {
    // Names may contain "/", so fields are taken from both ends.
    const match = /^\/(\d+)\/([0-7]+)\/\d+\/\d+\/(.*)\/(\d*)\/$/.exec(line.trim());
    if (match === null) continue;
    const [, inode, mode, name, size] = match;
    if (name === undefined || name === '.' || name === '..' || inode === undefined || mode === undefined) continue;
    // A deleted entry still listed by some versions has inode 0.
    if (inode === '0') continue;
    entries.push({ name, inode: Number(inode), mode: Number.parseInt(mode, 8), size: Number(size ?? '0') || 0 });
  }
  return entries;
}

export function isDirectory(entry: DirEntry): boolean {
  return (entry.mode & S_IFMT) === S_IFDIR;
}

/** A path as one debugfs argument; names that cannot be quoted for it are refused. */
export function debugfsQuote(path: string): string {
  if (/["\n\\]/.test(path)) throw new UserError(`cannot edit ${JSON.stringify(path)} in the image: its name has a quote, backslash or newline`);
  return `"${path}"`;
}

/** The entries of `dir` in the image; empty when it does not exist. */
export async function listDir(raw: string, dir: string): Promise<DirEntry[]> {
  const { stdout } = await run('debugfs', ['-R', `ls -p ${debugfsQuote(dir)}`, raw], { purpose: `list ${dir} in ${raw}` });
  return parseListing(stdout);
}

/** Runs debugfs requests (one per line) read-write in one process. */
export async function editImage(raw: string, requests: readonly string[], env: Record<string, string> = {}): Promise<void> {
  if (requests.length === 0) return;
  await run('debugfs', ['-w', '-f', '-', raw], {
    purpose: `edit the file system in ${raw}`,
    input: `${requests.join('\n')}\n`,
    env: { ...(process.env as Record<string, string>), ...env },
  });
}

/** debugfs requests that write the local file `source` as a new `file`: owned by root, with `mode` and the given times. */
export function writeFileRequests(file: string, source: string, mode: number, epoch: number): string[] {
  return [`write ${debugfsQuote(source)} ${debugfsQuote(file)}`, ...ownedByRoot(file, 0o100000 | mode, epoch)];
}

/** debugfs requests that make the directory `dir`: owned by root, with `mode` and the given times. */
export function mkdirRequests(dir: string, mode: number, epoch: number): string[] {
  return [`mkdir ${debugfsQuote(dir)}`, ...ownedByRoot(dir, 0o040000 | mode, epoch)];
}

function ownedByRoot(path: string, mode: number, epoch: number): string[] {
  return [
    `sif ${debugfsQuote(path)} mode 0${mode.toString(8)}`,
    `sif ${debugfsQuote(path)} uid 0`,
    `sif ${debugfsQuote(path)} gid 0`,
    ...(['atime', 'ctime', 'mtime'] as const).map((field) => `sif ${debugfsQuote(path)} ${field} ${epoch}`),
  ];
}

/** Copies a file out of the image (`dump`); false when it is not there. */
export async function dumpFile(raw: string, path: string, destination: string): Promise<boolean> {
  const { stderr } = await run('debugfs', ['-R', `dump ${debugfsQuote(path)} ${debugfsQuote(destination)}`, raw], { purpose: `copy ${path} out of ${raw}` });
  return !/not found|Ext2 file not found/i.test(stderr);
}

/** Size of a regular file in the image, or undefined when it does not exist. */
export async function fileSize(raw: string, path: string): Promise<number | undefined> {
  const { stdout, stderr } = await run('debugfs', ['-R', `stat ${debugfsQuote(path)}`, raw], { purpose: `stat ${path} in ${raw}` });
  if (/not found/i.test(stderr)) return undefined;
  const match = /\bSize: (\d+)/.exec(stdout);
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

/**
 * Full consistency check; `repair` fixes what e2fsck -p can fix (a journal left by a
 * killed guest is replayed). Exit 1 means "errors fixed" and is fine; anything else is
 * a damaged file system, which is not shipped.
 */
export async function checkFileSystem(raw: string, options: { repair: boolean; purpose: string }): Promise<void> {
  await run('e2fsck', ['-f', options.repair ? '-p' : '-n', raw], { purpose: options.purpose, allowExitCodes: options.repair ? [1] : [] });
}

/**
 * Inode numbers in use, from `dumpe2fs` output: every inode not listed free, skipping the
 * reserved ones below 11 except the root directory (2). Pure, tested with a table.
 */
export function inUseInodes(dumpe2fs: string): number[] {
  const perGroup = /^Inodes per group:\s+(\d+)/m.exec(dumpe2fs)?.[1];
  if (perGroup === undefined) throw new UserError('dumpe2fs printed no "Inodes per group"');
  const count = Number(perGroup);
  const inodes: number[] = [];
  const groups = dumpe2fs.split(/^Group (\d+):/m).slice(1);
  for (let index = 0; index + 1 < groups.length; index += 2) {
    const group = Number(groups[index]);
    const free = new Set<number>();
    const ranges = /^\s*Free inodes: ?(.*)$/m.exec(groups[index + 1] ?? '')?.[1] ?? '';
    for (const part of ranges.split(',').map((text) => text.trim()).filter((text) => text !== '')) {
      const [from, to] = part.split('-').map(Number);
      if (from === undefined) continue;
      for (let inode = from; inode <= (to ?? from); inode++) free.add(inode);
    }
    for (let inode = group * count + 1; inode <= (group + 1) * count; inode++) {
      if (!free.has(inode) && (inode >= 11 || inode === 2)) inodes.push(inode);
    }
  }
  return inodes;
}

/** The environment that makes e2fsprogs take `epoch` as the time, for every time it writes itself. */
export function fakeTimeEnv(epoch: number): Record<string, string> {
  return { ...(process.env as Record<string, string>), E2FSPROGS_FAKE_TIME: String(epoch) };
}

/** The inodes in use in the image (see inUseInodes). */
export async function imageInodes(raw: string, epoch: number): Promise<number[]> {
  const { stdout } = await run('dumpe2fs', [raw], { purpose: `read the inode tables of ${raw}`, env: fakeTimeEnv(epoch) });
  return inUseInodes(stdout);
}

/**
 * Sets each of `inodes`' atime and ctime to `epoch`. mke2fs -d copies them from the
 * source tree, where they record when the build ran (ctime cannot be set from user
 * space at all), so without this two builds of the same tree differ in every inode.
 * E2FSPROGS_FAKE_TIME keeps debugfs's own superblock write times fixed too.
 */
export async function clampInodeTimes(raw: string, inodes: readonly number[], epoch: number): Promise<void> {
  const requests = inodes.flatMap((inode) => [`sif <${inode}> ctime ${epoch}`, `sif <${inode}> atime ${epoch}`]);
  await editImage(raw, requests, { E2FSPROGS_FAKE_TIME: String(epoch) });
}

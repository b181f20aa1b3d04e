/**
 * The file given to `vmfile box add` (or downloaded for it): which kind of box it is,
 * from its first bytes, read only once it is known to be a regular file.
 */
import { open, stat } from 'node:fs/promises';
import { UserError } from '../errors.js';

export type ImageKind = 'qcow2' | 'tar' | 'gzip' | 'bzip2' | 'xz' | 'zstd' | 'unknown';

/** What a file is, from its first bytes. Pure, so it is tested with tables. */
export function sniffImage(head: Buffer): ImageKind {
  if (head.subarray(0, 4).equals(Buffer.from([0x51, 0x46, 0x49, 0xfb]))) return 'qcow2';
  if (head.length >= 262 && head.subarray(257, 262).toString('latin1') === 'ustar') return 'tar';
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2';
  if (head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (head.subarray(0, 4).equals(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))) return 'zstd';
  return 'unknown';
}

/** The first 512 bytes of `file`, which must be a regular file (`box` names the box in messages). */
export async function readHead(file: string, box: string): Promise<Buffer> {
  const unreadable = (error: unknown): UserError => {
    const code = (error as NodeJS.ErrnoException).code;
    return new UserError(`box ${box}: cannot read ${file}${code === 'ENOENT' ? ': no such file' : code === 'EACCES' ? ': permission denied' : ''}`, { hint: 'check the path' });
  };
  const info = await stat(file).catch((error: unknown) => {
    throw unreadable(error);
  });
  // A directory opens for reading too (then EISDIR), and opening a FIFO would wait for a writer.
  if (!info.isFile()) throw new UserError(`box ${box}: ${file} is ${info.isDirectory() ? 'a directory' : 'not a regular file'}, not a box file`, { hint: 'give the path of a qcow2 image or a .box file' });
  const handle = await open(file, 'r').catch((error: unknown) => {
    throw unreadable(error);
  });
  try {
    const buffer = Buffer.alloc(512);
    const { bytesRead } = await handle.read(buffer, 0, 512, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

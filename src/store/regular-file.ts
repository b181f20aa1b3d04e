/**
 * Reading a small file that someone else may have put in place: a record in a
 * project's .vmfile/, an entry of the project index, a pid file. open(2) of a FIFO
 * waits for a writer, in a thread that no signal can free, and a device or a huge file
 * would be read for ever; so the file is opened without blocking, must be a regular
 * file, and is read only up to a bound.
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';

/** A record, an index entry or a pid file: none comes near this. */
const DEFAULT_MAX_BYTES = 1 << 20;

/** The file is there but is not one vmfile reads: code ENOTREG (not a regular file) or EFBIG (too large). */
export class UnreadableFileError extends Error {
  constructor(
    message: string,
    readonly code: 'ENOTREG' | 'EFBIG',
  ) {
    super(message);
  }
}

/** The text of the regular file at `path`; a missing one rejects with ENOENT as readFile does. */
export async function readRegularFile(path: string, maxBytes = DEFAULT_MAX_BYTES): Promise<string> {
  const file = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  try {
    const stats = await file.stat();
    if (!stats.isFile()) throw new UnreadableFileError(`not a regular file (${kindOf(stats)})`, 'ENOTREG');
    if (stats.size > maxBytes) throw new UnreadableFileError(`larger than ${maxBytes} bytes`, 'EFBIG');
    // Bounded again while reading: the file may grow after stat.
    const buffer = Buffer.alloc(maxBytes + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await file.read(buffer, length, buffer.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length > maxBytes) throw new UnreadableFileError(`larger than ${maxBytes} bytes`, 'EFBIG');
    }
    return buffer.subarray(0, length).toString('utf8');
  } finally {
    await file.close();
  }
}

function kindOf(stats: { isDirectory(): boolean; isFIFO(): boolean; isSocket(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean }): string {
  if (stats.isDirectory()) return 'a directory';
  if (stats.isFIFO()) return 'a FIFO';
  if (stats.isSocket()) return 'a socket';
  if (stats.isCharacterDevice() || stats.isBlockDevice()) return 'a device';
  return 'not a file';
}

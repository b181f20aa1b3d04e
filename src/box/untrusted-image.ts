/**
 * A disk image from outside is opened only as the format its magic bytes show, and
 * only when it is standalone: no backing file and no external data file. Either would
 * make qemu-img (converting it) or QEMU (booting the box) read whatever host file the
 * image names — /etc/shadow, a private key, `fat:/home` (a whole directory as a FAT
 * disk) — into the box. The qcow2 header is read here first, before qemu-img opens the
 * image at all, so the refusal depends on neither what qemu-img opens nor what it
 * reports; `qemu-img info -f FORMAT` is then asked the same questions as a second,
 * independent reader.
 */
import { open } from 'node:fs/promises';
import { ExternalCommandError, UserError } from '../errors.js';
import { imageInfo, type ImageFormat, type ImageInfo } from '../qemu/img.js';
import { printable } from '../vmfile/box-metadata.js';

/** The header and its extensions lie in the first cluster, at most 2 MiB. */
const HEADER_READ = 2 * 1024 * 1024;
const QCOW2_MAGIC = 0x514649fb;
const INCOMPATIBLE_DATA_FILE = 1n << 2n;
const EXTENSION_END = 0;
const EXTENSION_DATA_FILE = 0x44415441;

/** Why a qcow2 header does not describe a standalone image, one phrase each; empty when it does. Pure. */
export function qcow2HeaderProblems(header: Buffer): string[] {
  if (header.length < 72 || header.readUInt32BE(0) !== QCOW2_MAGIC) return ['its qcow2 header is missing or cut short'];
  const problems: string[] = [];
  const version = header.readUInt32BE(4);
  if (version !== 2 && version !== 3) return [`it is qcow2 version ${version}, which vmfile does not read`];
  const backingOffset = header.readBigUInt64BE(8);
  const backingSize = header.readUInt32BE(16);
  if (backingOffset !== 0n || backingSize !== 0) problems.push(`it names a backing file ${quoted(header, backingOffset, backingSize)}`);
  if (header.readUInt32BE(32) !== 0) problems.push('it is encrypted');
  let extensions = 72;
  if (version === 3) {
    if (header.length < 104) return [...problems, 'its qcow2 header is cut short'];
    if ((header.readBigUInt64BE(72) & INCOMPATIBLE_DATA_FILE) !== 0n) problems.push('it keeps its data in an external data file');
    extensions = header.readUInt32BE(100);
  }
  // Header extensions: type, length, data padded to 8 bytes, until type 0.
  for (let offset = extensions, count = 0; count < 64; count += 1) {
    if (offset + 8 > header.length) {
      problems.push('its header extensions run past the first cluster');
      break;
    }
    const type = header.readUInt32BE(offset);
    const length = header.readUInt32BE(offset + 4);
    if (type === EXTENSION_END) break;
    if (type === EXTENSION_DATA_FILE) problems.push(`it names an external data file ${quoted(header, BigInt(offset + 8), length)}`);
    offset += 8 + Math.ceil(length / 8) * 8;
  }
  return [...new Set(problems)];
}

/** Why `qemu-img info`'s answer is not a standalone image of `format`, one phrase each. Pure. */
export function imageInfoProblems(info: ImageInfo, format: ImageFormat): string[] {
  const problems: string[] = [];
  if (info.format !== format) problems.push(`qemu-img reads it as ${printable(info.format)}, not ${format}`);
  const backing = info.fullBackingFile ?? info.backingFile;
  if (backing !== undefined) problems.push(`it names a backing file ${JSON.stringify(printable(backing, 200))}`);
  if (info.dataFile !== undefined) problems.push(`it names an external data file ${JSON.stringify(printable(info.dataFile, 200))}`);
  return problems;
}

/** Where an image came from, for messages: `box NAME: FILE` and, for a member of an archive, its name there. */
export interface ImageOrigin {
  box: string;
  file: string;
  member?: string;
}

/**
 * The image's facts, once it is known to be a standalone image of `format` with a size;
 * a UserError naming the box, the file and every problem otherwise. Call before anything
 * reads it.
 */
export async function checkStandaloneImage(path: string, format: ImageFormat, origin: ImageOrigin): Promise<ImageInfo> {
  if (format === 'qcow2') refuseIfAny(qcow2HeaderProblems(await readStart(path)), origin);
  let info: ImageInfo;
  try {
    info = await imageInfo(path, format);
  } catch (error) {
    if (!(error instanceof ExternalCommandError)) throw error;
    throw new UserError(`${describe(origin)} cannot be read as a ${format} image: ${printable(error.stderr.trim(), 300) || error.message}`, {
      hint: 'the file is damaged or not a disk image; nothing was added',
      cause: error,
    });
  }
  refuseIfAny(imageInfoProblems(info, format), origin);
  // A box with no disk to boot is a broken download or a packing mistake, never a box.
  if (info.virtualSize === 0) throw new UserError(`${describe(origin)} is an empty disk (0 bytes). Nothing was added`, { hint: 'the box is incomplete; get it again from its publisher, or pack it again' });
  return info;
}

function refuseIfAny(problems: readonly string[], origin: ImageOrigin): void {
  if (problems.length === 0) return;
  throw new UserError(`${describe(origin)} is not a standalone disk image: ${problems.join('; ')}. Nothing was added, and nothing it names was read`, {
    hint: 'a box must carry its whole disk; where it was made, flatten it with: qemu-img convert -O qcow2 IMAGE standalone.qcow2',
  });
}

function describe(origin: ImageOrigin): string {
  return `box ${origin.box}: ${origin.file}${origin.member === undefined ? '' : ` (its ${origin.member})`}`;
}

async function readStart(path: string): Promise<Buffer> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(HEADER_READ);
    const { bytesRead } = await handle.read(buffer, 0, HEADER_READ, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/** A name stored in the header, quoted for a message ("(past the header)" when it lies beyond what was read). */
function quoted(header: Buffer, offset: bigint, length: number): string {
  const end = offset + BigInt(Math.min(length, 1024));
  if (end > BigInt(header.length)) return '(stored past the header)';
  return JSON.stringify(printable(header.subarray(Number(offset), Number(end)).toString('utf8'), 200));
}

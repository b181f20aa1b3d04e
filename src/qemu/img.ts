/**
 * qemu-img: overlays, image facts and conversions. Every call names the image's format
 * (-f): left to probe, qemu-img takes a raw disk whose first bytes look like a qcow2 or
 * VMDK header for that format, and such a header can name any host file as its backing
 * file or extent.
 */
import { run } from '../exec.js';
import { VmfileError } from '../errors.js';

export type ImageFormat = 'qcow2' | 'raw';

export interface ImageInfo {
  format: string;
  virtualSize: number;
  actualSize: number;
  /** As written in the image, and as qemu-img resolved it (relative to the image, or a protocol such as fat:). */
  backingFile?: string;
  fullBackingFile?: string;
  /** qcow2 only: the external file that holds the guest data, when the image has one. */
  dataFile?: string;
}

export async function imageInfo(path: string, format: ImageFormat): Promise<ImageInfo> {
  const { stdout } = await run('qemu-img', ['info', '--output=json', '-U', '-f', format, path], { purpose: `read image ${path}` });
  const parsed: unknown = JSON.parse(stdout);
  if (typeof parsed !== 'object' || parsed === null) throw new VmfileError(`qemu-img info ${path}: unexpected output`);
  const record = parsed as Record<string, unknown>;
  const virtualSize = record['virtual-size'];
  const actualSize = record['actual-size'];
  if (typeof record['format'] !== 'string' || typeof virtualSize !== 'number') {
    throw new VmfileError(`qemu-img info ${path}: unexpected output`);
  }
  const specific = record['format-specific'];
  const data = typeof specific === 'object' && specific !== null && 'data' in specific ? specific.data : undefined;
  const dataFile = typeof data === 'object' && data !== null && 'data-file' in data ? data['data-file'] : undefined;
  const text = (value: unknown, key: string): Record<string, string> => (typeof value === 'string' ? { [key]: value } : {});
  return {
    format: record['format'],
    virtualSize,
    actualSize: typeof actualSize === 'number' ? actualSize : 0,
    ...text(record['backing-filename'], 'backingFile'),
    ...text(record['full-backing-filename'], 'fullBackingFile'),
    ...text(dataFile, 'dataFile'),
  };
}

/** Writes the first `bytes` bytes of the disk, as the guest sees them, to `output` (a raw file). */
export async function readImageHead(image: string, format: 'qcow2' | 'raw', output: string, bytes: number): Promise<void> {
  await run('qemu-img', ['dd', '-f', format, '-O', 'raw', 'bs=512', `count=${Math.ceil(bytes / 512)}`, `if=${image}`, `of=${output}`], {
    purpose: `read the partition table of ${image}`,
  });
}

/** A copy-on-write disk of `size` bytes over the box disk; the box stays untouched. */
export async function createOverlay(backing: string, overlay: string, size: number): Promise<void> {
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', backing, '-F', 'qcow2', overlay, String(size)], {
    purpose: `create overlay disk ${overlay}`,
  });
}

export interface ConvertOptions {
  /** The source's format, never probed (see the module comment). */
  sourceFormat: ImageFormat;
  purpose?: string;
  onProgress?: (fraction: number) => void;
}

/** Flattens an image (backing files folded in) into a standalone image. */
export async function convertImage(source: string, destination: string, format: ImageFormat, options: ConvertOptions): Promise<void> {
  const { onProgress } = options;
  // -p prints "    (12.34/100%)" repeatedly, separated by carriage returns.
  const progress = onProgress === undefined ? {} : { onLine: (line: string) => progressOf(line, onProgress) };
  await run('qemu-img', ['convert', ...(onProgress === undefined ? [] : ['-p']), '-f', options.sourceFormat, '-O', format, source, destination], {
    purpose: options.purpose ?? `convert ${source} to ${format}`,
    ...progress,
  });
}

function progressOf(line: string, onProgress: (fraction: number) => void): void {
  for (const match of line.matchAll(/\((\d+(?:\.\d+)?)\/100%\)/g)) onProgress(Number(match[1]) / 100);
}

export interface DiskSnapshot {
  name: string;
  /** Seconds since the epoch. */
  date: number;
  /** Bytes of saved memory and device state; 0 for a disk-only snapshot. */
  vmStateSize: number;
  /** Guest clock at the snapshot, in seconds. */
  vmClock: number;
}

/**
 * Internal snapshots of a qcow2 image. -U reads without taking QEMU's lock, so this
 * also works while the machine runs (the table is read whole; it may lag a save in
 * progress by one entry).
 */
export async function listSnapshots(path: string): Promise<DiskSnapshot[]> {
  const { stdout } = await run('qemu-img', ['info', '--output=json', '-U', '-f', 'qcow2', path], { purpose: `list snapshots of ${path}` });
  const parsed: unknown = JSON.parse(stdout);
  const list = typeof parsed === 'object' && parsed !== null && 'snapshots' in parsed && Array.isArray(parsed.snapshots) ? (parsed.snapshots as unknown[]) : [];
  return list.flatMap((entry) => {
    if (typeof entry !== 'object' || entry === null) return [];
    const record = entry as Record<string, unknown>;
    if (typeof record['name'] !== 'string') return [];
    return [
      {
        name: record['name'],
        date: typeof record['date-sec'] === 'number' ? record['date-sec'] : 0,
        vmStateSize: typeof record['vm-state-size'] === 'number' ? record['vm-state-size'] : 0,
        vmClock: typeof record['vm-clock-sec'] === 'number' ? record['vm-clock-sec'] : 0,
      },
    ];
  });
}

/** Offline snapshot operations (the image must not be in use). */
export async function snapshotOffline(path: string, action: 'create' | 'apply' | 'delete', name: string): Promise<void> {
  const flag = { create: '-c', apply: '-a', delete: '-d' }[action];
  // qemu-img 7.2's snapshot takes no -f; the file is one vmfile made itself as qcow2 (an
  // overlay or a variable store), never an image from outside.
  await run('qemu-img', ['snapshot', flag, name, path], { purpose: `${action} snapshot "${name}" of ${path}` });
}

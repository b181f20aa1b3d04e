/** qemu-img: overlays, image facts and conversions. */
import { run } from '../exec.js';
import { ExternalCommandError, VmfileError } from '../errors.js';

export interface ImageInfo {
  format: string;
  virtualSize: number;
  actualSize: number;
  backingFile?: string;
}

export async function imageInfo(path: string, signal?: AbortSignal): Promise<ImageInfo> {
  const { stdout } = await run('qemu-img', ['info', '--output=json', '-U', path], {
    purpose: `read image ${path}`,
    ...(signal === undefined ? {} : { signal }),
  });
  const parsed: unknown = JSON.parse(stdout);
  if (typeof parsed !== 'object' || parsed === null) throw new VmfileError(`qemu-img info ${path}: unexpected output`);
  const record = parsed as Record<string, unknown>;
  const format = record['format'];
  const virtualSize = record['virtual-size'];
  const actualSize = record['actual-size'];
  const backing = record['backing-filename'];
  if (typeof format !== 'string' || typeof virtualSize !== 'number') {
    throw new VmfileError(`qemu-img info ${path}: unexpected output`);
  }
  return {
    format,
    virtualSize,
    actualSize: typeof actualSize === 'number' ? actualSize : 0,
    ...(typeof backing === 'string' ? { backingFile: backing } : {}),
  };
}

/** A copy-on-write disk of `size` bytes over the box disk; the box stays untouched. */
export async function createOverlay(backing: string, overlay: string, size: number): Promise<void> {
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', backing, '-F', 'qcow2', overlay, String(size)], {
    purpose: `create overlay disk ${overlay}`,
  });
}

/** Flattens any image QEMU reads into a standalone qcow2. */
export async function convertToQcow2(source: string, destination: string, signal?: AbortSignal): Promise<void> {
  await run('qemu-img', ['convert', '-O', 'qcow2', source, destination], {
    purpose: `convert ${source} to qcow2`,
    ...(signal === undefined ? {} : { signal }),
  });
}

export function isMissingTool(error: unknown): boolean {
  return error instanceof ExternalCommandError && error.message.endsWith('is not installed');
}

/**
 * How much of the file system that holds VMFILE_HOME a box may take while it is
 * downloaded or unpacked: never more than MAX_BOX_BYTES, and never so much that less
 * than a reserve stays free. The file system also holds the machines' disks, which grow
 * as guests write (a guest that meets a full disk is paused by QEMU), so a box that does
 * not fit is refused, not squeezed in. The bound is taken before the first byte (from
 * the announced size, or the listing of an archive) and checked again while the bytes
 * come: a server that announces nothing, or another process filling the disk, is caught
 * at the reserve.
 */
import { statfs } from 'node:fs/promises';
import { formatSize } from '../vmfile/size.js';

/** 256 GiB: no box is that big; a box file claiming more is a mistake or an attack. */
export const MAX_BOX_BYTES = 256 * 1024 ** 3;

/** How often the free space is read again while a box is written. */
export const SPACE_CHECK_BYTES = 8 * 1024 ** 2;
export const SPACE_CHECK_MS = 250;

/** What statfs says of a file system, in bytes; `free` is what an unprivileged process may use. */
export interface FileSystemSpace {
  free: number;
  size: number;
}

/** Reads the file system that holds `dir`. Tests pass their own to stand for a small or filling disk. */
export type SpaceProbe = (dir: string) => Promise<FileSystemSpace>;

export const statfsSpace: SpaceProbe = async (dir) => {
  const info = await statfs(dir);
  return { free: info.bavail * info.bsize, size: info.blocks * info.bsize };
};

/** What stays free: 2% of the file system, at least 1 GiB (a few minutes of a guest's writes) and at most 10 GiB. */
export function reserveOf(size: number): number {
  return Math.min(10 * 1024 ** 3, Math.max(1024 ** 3, Math.floor(size / 50)));
}

/** The bound for one box, taken before it is written. */
export interface SpaceBudget {
  /** A directory on the file system (for messages and later checks). */
  dir: string;
  free: number;
  reserve: number;
  /** How many more bytes it may take: free space less the reserve, at most the size cap. */
  bytes: number;
}

export async function spaceBudget(dir: string, cap: number, probe: SpaceProbe = statfsSpace): Promise<SpaceBudget> {
  const { free, size } = await probe(dir);
  const reserve = reserveOf(size);
  return { dir, free, reserve, bytes: Math.max(0, Math.min(cap, free - reserve)) };
}

/** "the file system of DIR has 3GiB free, and vmfile leaves 1GiB of it free" */
export function describeSpace(budget: Pick<SpaceBudget, 'dir' | 'free' | 'reserve'>): string {
  return `the file system of ${budget.dir} has ${formatSize(budget.free)} free, and vmfile leaves ${formatSize(budget.reserve)} of it free`;
}

export const SPACE_HINT = 'free some space there (vmfile box prune and vmfile cache prune remove what nothing uses), or point VMFILE_HOME at a larger file system';

/** Undefined while the file system keeps its reserve; else a sentence saying how much is left now. */
export async function spaceRunningOut(budget: SpaceBudget, probe: SpaceProbe = statfsSpace): Promise<string | undefined> {
  const { free } = await probe(budget.dir);
  if (free >= budget.reserve) return undefined;
  return `the file system of ${budget.dir} has only ${formatSize(free)} free now, less than the ${formatSize(budget.reserve)} vmfile leaves free`;
}

/**
 * Reads the free space every SPACE_CHECK_MS while a program writes, and calls `onLow`
 * (once) when the reserve is reached. Returns the function that stops watching.
 */
export function watchSpace(budget: SpaceBudget, probe: SpaceProbe, onLow: (reason: string) => void): () => void {
  let stopped = false;
  const check = async (): Promise<void> => {
    const reason = await spaceRunningOut(budget, probe).catch(() => undefined);
    if (stopped) return;
    if (reason !== undefined) {
      stopped = true;
      onLow(reason);
      return;
    }
    timer = setTimeout(() => void check(), SPACE_CHECK_MS);
  };
  let timer = setTimeout(() => void check(), 0);
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

/**
 * Which firmware boots a disk, read from its partition table: a GPT with an EFI system
 * partition boots under UEFI; a GPT with a BIOS boot partition (where grub keeps its
 * core image) or a legacy-bootable partition, or an MBR with boot code, boots under
 * BIOS. Debian's and most distributions' cloud images carry both and boot either way.
 * The answer is recorded in box.json when a box is added; nothing here trusts the
 * image beyond reading bytes (bounds are checked against the buffer).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readImageHead } from '../qemu/img.js';

export type Firmware = 'bios' | 'uefi';

export interface DiskLayout {
  table: 'gpt' | 'mbr' | 'none';
  /** Firmwares the disk can boot with, UEFI first. Empty: nothing bootable was found. */
  boots: Firmware[];
}

const SECTOR = 512;
/** Enough for the MBR, the GPT header and the usual 128 partition entries. */
export const LAYOUT_HEAD_BYTES = 64 * 1024;

// GPT type GUIDs as stored on disk (the first three fields little-endian).
const ESP = guidBytes('C12A7328-F81F-11D2-BA4B-00A0C93EC93B');
const BIOS_BOOT = guidBytes('21686148-6449-6E6F-744E-656564454649');
const LEGACY_BIOS_BOOTABLE = 1n << 2n;

/** Pure: the layout of a disk from its first LAYOUT_HEAD_BYTES bytes. */
export function diskLayout(head: Buffer): DiskLayout {
  if (head.length < SECTOR || head.readUInt16LE(510) !== 0xaa55) return { table: 'none', boots: [] };
  const types = [0, 1, 2, 3].map((i) => head[446 + i * 16 + 4] ?? 0);
  const hasBootCode = head.subarray(0, 440).some((byte) => byte !== 0);
  if (types.includes(0xee)) return gptLayout(head, hasBootCode);
  const boots: Firmware[] = [];
  if (types.includes(0xef)) boots.push('uefi');
  if (hasBootCode && types.some((type) => type !== 0 && type !== 0xef)) boots.push('bios');
  return { table: 'mbr', boots };
}

function gptLayout(head: Buffer, hasBootCode: boolean): DiskLayout {
  const header = head.subarray(SECTOR, 2 * SECTOR);
  if (header.length < 92 || header.toString('latin1', 0, 8) !== 'EFI PART') return { table: 'none', boots: [] };
  const entriesAt = Number(header.readBigUInt64LE(72)) * SECTOR;
  const count = header.readUInt32LE(80);
  const size = header.readUInt32LE(84);
  let esp = false;
  let biosBoot = false;
  if (size >= 128 && count <= 1024) {
    for (let i = 0; i < count; i++) {
      const at = entriesAt + i * size;
      if (at + 128 > head.length) break;
      const type = head.subarray(at, at + 16);
      if (type.equals(ESP)) esp = true;
      if (type.equals(BIOS_BOOT)) biosBoot = true;
      if (!type.every((byte) => byte === 0) && (head.readBigUInt64LE(at + 48) & LEGACY_BIOS_BOOTABLE) !== 0n) biosBoot = true;
    }
  }
  const boots: Firmware[] = [];
  if (esp) boots.push('uefi');
  if (biosBoot && hasBootCode) boots.push('bios');
  return { table: 'gpt', boots };
}

function guidBytes(text: string): Buffer {
  const hex = text.replaceAll('-', '');
  const bytes = Buffer.from(hex, 'hex');
  bytes.subarray(0, 4).reverse();
  bytes.subarray(4, 6).reverse();
  bytes.subarray(6, 8).reverse();
  return bytes;
}

/** Reads the layout of a qcow2 disk. */
export async function readDiskLayout(disk: string): Promise<DiskLayout> {
  const dir = await mkdtemp(join(tmpdir(), 'vmfile-layout-'));
  try {
    const head = join(dir, 'head');
    await readImageHead(disk, 'qcow2', head, LAYOUT_HEAD_BYTES);
    return diskLayout(await readFile(head));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

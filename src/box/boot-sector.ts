/**
 * The first MiB of a disk that BIOS firmware boots with GRUB, written by hand as
 * grub-install would (grub-install needs the disk mounted, which needs root and loop
 * devices with partition scanning): GRUB's boot.img in the master boot record, told
 * where GRUB's core image starts; the core image in the sectors after it, its first
 * sector told where the rest of it lies; one bootable Linux partition from 1 MiB on.
 * Pure: byte layouts only, tested with a table.
 */
import { UserError } from '../errors.js';

export const SECTOR_BYTES = 512;
/** The partition starts at 1 MiB, as every partitioning tool does; the gap holds GRUB's core image. */
export const PARTITION_START_SECTOR = 2048;
/** GRUB's core image starts in the sector after the master boot record. */
export const CORE_START_SECTOR = 1;

/** boot.img keeps the first sector of the core image, a 64-bit LBA, here. */
const BOOT_KERNEL_SECTOR_OFFSET = 0x5c;
/** The core image's first sector (diskboot) lists the sectors of the rest: its start, a 64-bit LBA, here. */
const DISKBOOT_BLOCKLIST_START_OFFSET = 0x1f4;
const BOOT_CODE_BYTES = 440;
const DISK_SIGNATURE_OFFSET = 440;
const PARTITION_TABLE_OFFSET = 446;
const LINUX_PARTITION_TYPE = 0x83;
const MAX_MBR_SECTORS = 0xffff_ffff;

/** Cylinder/head/sector of an LBA on the 255-head, 63-sector geometry, or the "use LBA" marker past 1024 cylinders. */
export function chsOf(lba: number): [number, number, number] {
  const heads = 255;
  const sectors = 63;
  const cylinder = Math.floor(lba / (heads * sectors));
  if (cylinder > 1023) return [0xfe, 0xff, 0xff];
  const head = Math.floor(lba / sectors) % heads;
  const sector = (lba % sectors) + 1;
  return [head, ((cylinder >> 2) & 0xc0) | sector, cylinder & 0xff];
}

/**
 * The master boot record: boot.img's code, a disk signature, one bootable Linux partition
 * of `partitionSectors` sectors from PARTITION_START_SECTOR, and the 0x55AA signature.
 */
export function masterBootRecord(bootImage: Buffer, partitionSectors: number, diskSignature: number): Buffer {
  if (bootImage.length !== SECTOR_BYTES) throw new UserError(`GRUB's boot.img is ${bootImage.length} bytes, not one ${SECTOR_BYTES}-byte sector`, { hint: 'reinstall grub-pc-bin' });
  const last = PARTITION_START_SECTOR + partitionSectors - 1;
  if (partitionSectors <= 0 || last > MAX_MBR_SECTORS) throw new UserError(`a disk of ${partitionSectors} sectors cannot be described by a master boot record (2 TiB at most)`);
  const mbr = Buffer.alloc(SECTOR_BYTES);
  bootImage.copy(mbr, 0, 0, BOOT_CODE_BYTES);
  mbr.writeBigUInt64LE(BigInt(CORE_START_SECTOR), BOOT_KERNEL_SECTOR_OFFSET);
  mbr.writeUInt32LE(diskSignature >>> 0, DISK_SIGNATURE_OFFSET);
  const entry = PARTITION_TABLE_OFFSET;
  mbr[entry] = 0x80;
  Buffer.from(chsOf(PARTITION_START_SECTOR)).copy(mbr, entry + 1);
  mbr[entry + 4] = LINUX_PARTITION_TYPE;
  Buffer.from(chsOf(last)).copy(mbr, entry + 5);
  mbr.writeUInt32LE(PARTITION_START_SECTOR, entry + 8);
  mbr.writeUInt32LE(partitionSectors, entry + 12);
  mbr[510] = 0x55;
  mbr[511] = 0xaa;
  return mbr;
}

/** GRUB's core image with its first sector told that the rest starts right after it. */
export function placedCoreImage(core: Buffer): Buffer {
  const room = (PARTITION_START_SECTOR - CORE_START_SECTOR) * SECTOR_BYTES;
  if (core.length > room) throw new UserError(`GRUB's core image is ${core.length} bytes, more than the ${room} bytes before the partition`, { hint: 'report it: the modules vmfile embeds grew' });
  if (core.length < SECTOR_BYTES) throw new UserError(`GRUB's core image is ${core.length} bytes, shorter than its first sector`, { hint: 'reinstall grub-pc-bin' });
  const placed = Buffer.from(core);
  placed.writeBigUInt64LE(BigInt(CORE_START_SECTOR + 1), DISKBOOT_BLOCKLIST_START_OFFSET);
  return placed;
}

/** The hand-written first MiB of a disk that boots with GRUB: byte layouts, and what sfdisk and grub-mkimage make of them. */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { chsOf, masterBootRecord, PARTITION_START_SECTOR, placedCoreImage } from '../../../src/box/boot-sector.js';
import { run } from '../../../src/exec.js';
import { UserError } from '../../../src/errors.js';
import { tempDir } from '../temp-dir.js';

const bootImage = Buffer.alloc(512, 0xab);
const GIB_SECTORS = (1024 ** 3) / 512;

describe('chsOf', () => {
  test.each([
    [0, [0, 1, 0]],
    [62, [0, 63, 0]],
    [63, [1, 1, 0]],
    [2048, [32, 33, 0]],
    // Cylinder 256: its high bits go into the sector byte.
    [256 * 255 * 63, [0, 0x41, 0]],
    [1024 * 255 * 63, [0xfe, 0xff, 0xff]],
  ])('LBA %i is %j', (lba, chs) => {
    expect(chsOf(lba)).toEqual(chs);
  });
});

describe('masterBootRecord', () => {
  test("holds boot.img's code pointing at the core image, a disk signature, one bootable Linux partition, and 0x55AA", () => {
    const mbr = masterBootRecord(bootImage, 4 * GIB_SECTORS - PARTITION_START_SECTOR, 0x6a1f3c5e);
    expect(mbr.length).toBe(512);
    expect(mbr.subarray(0, 0x5c).every((byte) => byte === 0xab)).toBe(true);
    expect(mbr.readBigUInt64LE(0x5c)).toBe(1n);
    expect(mbr.subarray(0x64, 440).every((byte) => byte === 0xab)).toBe(true);
    expect(mbr.readUInt32LE(440)).toBe(0x6a1f3c5e);
    // The last sector of 4 GiB is cylinder 522 (its high bits in the sector byte), head 42, sector 32.
    expect([...mbr.subarray(446, 454)]).toEqual([0x80, 32, 33, 0, 0x83, 42, 0x80 | 32, 522 & 0xff]);
    expect(mbr.readUInt32LE(454)).toBe(2048);
    expect(mbr.readUInt32LE(458)).toBe(4 * GIB_SECTORS - 2048);
    expect(mbr.subarray(462, 510).every((byte) => byte === 0)).toBe(true);
    expect([mbr[510], mbr[511]]).toEqual([0x55, 0xaa]);
  });

  test('sfdisk reads it as one bootable Linux partition from 1 MiB to the end of the disk', async () => {
    const disk = join(await tempDir(), 'disk.raw');
    await writeFile(disk, Buffer.alloc(0));
    await run('truncate', ['-s', '64M', disk]);
    const handle = await import('node:fs/promises').then((fs) => fs.open(disk, 'r+'));
    await handle.write(masterBootRecord(bootImage, (64 * 1024 * 1024) / 512 - 2048, 1), 0, 512, 0);
    await handle.close();
    const { stdout } = await run('sfdisk', ['--json', disk]);
    const table = (JSON.parse(stdout) as { partitiontable: { label: string; partitions: { start: number; size: number; type: string; bootable?: boolean }[] } }).partitiontable;
    expect(table.label).toBe('dos');
    expect(table.partitions).toEqual([expect.objectContaining({ start: 2048, size: 131072 - 2048, type: '83', bootable: true })]);
  });

  test('refuses a disk a master boot record cannot describe, and a boot.img that is not one sector', () => {
    expect(() => masterBootRecord(bootImage, 0xffff_ffff, 1)).toThrow(UserError);
    expect(() => masterBootRecord(bootImage, 0, 1)).toThrow(UserError);
    expect(() => masterBootRecord(Buffer.alloc(440), 2048, 1)).toThrow(/not one 512-byte sector/);
  });
});

describe('placedCoreImage', () => {
  test("tells the core image's first sector that the rest starts at sector 2, and changes nothing else", () => {
    const core = Buffer.alloc(4096, 7);
    const placed = placedCoreImage(core);
    expect(placed.readBigUInt64LE(500)).toBe(2n);
    expect(Buffer.compare(placed.subarray(0, 500), core.subarray(0, 500))).toBe(0);
    expect(Buffer.compare(placed.subarray(508), core.subarray(508))).toBe(0);
    expect(core.readBigUInt64LE(500)).not.toBe(2n);
  });

  test('refuses a core image that does not fit before the partition', () => {
    expect(() => placedCoreImage(Buffer.alloc(2047 * 512 + 1))).toThrow(/more than the 1048064 bytes/);
    expect(() => placedCoreImage(Buffer.alloc(100))).toThrow(UserError);
  });

  test("the core image vmfile's modules make fits, with plenty of room", async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'early.cfg'), 'set root=(hd0,msdos1)\n');
    await run('grub-mkimage', ['-O', 'i386-pc', '-c', join(dir, 'early.cfg'), '-p', '/boot/grub', '-o', join(dir, 'core.img'), 'biosdisk', 'part_msdos', 'ext2', 'linux', 'boot', 'normal', 'echo', 'test']);
    const core = await readFile(join(dir, 'core.img'));
    expect(core.length).toBeLessThan(512 * 1024);
    expect(placedCoreImage(core).readBigUInt64LE(500)).toBe(2n);
  });
});

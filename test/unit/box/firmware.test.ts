import { readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { describe, expect, test } from 'vitest';
import { diskLayout, LAYOUT_HEAD_BYTES, readDiskLayout } from '../../../src/box/firmware.js';
import { tempDir } from '../temp-dir.js';

const ESP = 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B';
const BIOS_BOOT = '21686148-6449-6E6F-744E-656564454649';
const LINUX = '0FC63DAF-8483-4772-8E79-3D69D8477DE4';

/** A real partition table written by sfdisk, plus (optionally) boot code in the MBR. */
async function disk(script: string, bootCode: boolean): Promise<Buffer> {
  const file = join(await tempDir(), 'disk.raw');
  await truncate(await writeFile(file, '').then(() => file), 64 * 1024 * 1024);
  execFileSync('sfdisk', ['-q', file], { input: script });
  const head = (await readFile(file)).subarray(0, LAYOUT_HEAD_BYTES);
  if (bootCode) head.fill(0xeb, 0, 2);
  return head;
}

describe('diskLayout', () => {
  test('a hybrid GPT (BIOS boot partition and ESP) boots under both, UEFI first', async () => {
    const head = await disk(`label: gpt\nsize=1MiB, type=${BIOS_BOOT}\nsize=8MiB, type=${ESP}\ntype=${LINUX}\n`, true);
    expect(diskLayout(head)).toEqual({ table: 'gpt', boots: ['uefi', 'bios'] });
  });

  test('a GPT with only an ESP boots under UEFI only', async () => {
    expect(diskLayout(await disk(`label: gpt\nsize=8MiB, type=${ESP}\ntype=${LINUX}\n`, true))).toEqual({ table: 'gpt', boots: ['uefi'] });
  });

  test('a BIOS boot partition without boot code in the MBR does not boot', async () => {
    expect(diskLayout(await disk(`label: gpt\nsize=1MiB, type=${BIOS_BOOT}\ntype=${LINUX}\n`, false))).toEqual({ table: 'gpt', boots: [] });
  });

  test('a GPT partition marked legacy-BIOS-bootable boots under BIOS', async () => {
    expect(diskLayout(await disk(`label: gpt\ntype=${LINUX}, attrs="LegacyBIOSBootable"\n`, true))).toEqual({ table: 'gpt', boots: ['bios'] });
  });

  test('an MBR disk with boot code boots under BIOS; without it, not at all', async () => {
    expect(diskLayout(await disk('label: dos\ntype=83, bootable\n', true))).toEqual({ table: 'mbr', boots: ['bios'] });
    expect(diskLayout(await disk('label: dos\ntype=83, bootable\n', false))).toEqual({ table: 'mbr', boots: [] });
  });

  test('an MBR ESP (type 0xef) boots under UEFI', async () => {
    expect(diskLayout(await disk('label: dos\nsize=8MiB, type=ef\n', false))).toEqual({ table: 'mbr', boots: ['uefi'] });
  });

  test('no partition table, a short read, and a damaged GPT header are "none"', async () => {
    expect(diskLayout(Buffer.alloc(LAYOUT_HEAD_BYTES))).toEqual({ table: 'none', boots: [] });
    expect(diskLayout(Buffer.alloc(100))).toEqual({ table: 'none', boots: [] });
    const head = await disk(`label: gpt\nsize=8MiB, type=${ESP}\n`, true);
    head.write('NOT PART', 512, 'latin1');
    expect(diskLayout(head)).toEqual({ table: 'none', boots: [] });
  });

  test('partition entries claimed beyond the bytes read are not read', async () => {
    const head = await disk(`label: gpt\nsize=8MiB, type=${ESP}\n`, true);
    head.writeBigUInt64LE(1n << 40n, 512 + 72);
    expect(diskLayout(head)).toEqual({ table: 'gpt', boots: [] });
  });

  test('readDiskLayout reads a qcow2 image as the guest sees it', async () => {
    const dir = await tempDir();
    const raw = join(dir, 'disk.raw');
    await truncate(await writeFile(raw, '').then(() => raw), 64 * 1024 * 1024);
    execFileSync('sfdisk', ['-q', raw], { input: `label: gpt\nsize=8MiB, type=${ESP}\ntype=${LINUX}\n` });
    execFileSync('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', raw, join(dir, 'disk.qcow2')]);
    expect(await readDiskLayout(join(dir, 'disk.qcow2'))).toEqual({ table: 'gpt', boots: ['uefi'] });
  });
});

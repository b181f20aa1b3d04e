import { describe, expect, test } from 'vitest';
import { archivePriorities, debFileName, debFromControl, packagesIndex, packageSetDifference, parseControl, poolPath } from '../../../src/box/debs.js';
import { debRefSchema, type DebRef } from '../../../src/vmfile/deb-ref.js';

const SHA = 'ab'.repeat(32);

function deb(fields: Partial<DebRef> & Pick<DebRef, 'name' | 'version'>): DebRef {
  return { architecture: 'amd64', sha256: SHA, ...fields };
}

describe('control fields', () => {
  test('a binary rebuild names its source without the version, and a source named like the package is left out', () => {
    const rebuilt = debFromControl(parseControl('Package: bash\nVersion: 5.2.15-2+b13\nArchitecture: amd64\nSource: bash (5.2.15-2)\n'), SHA);
    expect(rebuilt).toEqual({ name: 'bash', version: '5.2.15-2+b13', architecture: 'amd64', sha256: SHA });
    const other = debFromControl(parseControl('Package: bsdutils\nSource: util-linux\nVersion: 1:2.38.1-5+deb12u3\nArchitecture: amd64\nDescription: basic utilities\n more text\n'), SHA);
    expect(other).toEqual({ name: 'bsdutils', version: '1:2.38.1-5+deb12u3', architecture: 'amd64', source: 'util-linux', sha256: SHA });
  });

  test('a field that is missing or malformed is named, not taken', () => {
    expect(debFromControl(parseControl('Package: x\nArchitecture: amd64\n'), SHA)).toEqual({ problem: expect.stringContaining('version') });
    expect(debFromControl(parseControl('Package: ../../etc\nVersion: 1\nArchitecture: amd64\n'), SHA)).toEqual({ problem: expect.stringContaining('name') });
    expect(debFromControl(parseControl('Package: x\nVersion: 1 2\nArchitecture: amd64\n'), SHA)).toEqual({ problem: expect.stringContaining('version') });
  });

  test('the lock schema refuses what would escape a URL or a file name', () => {
    for (const bad of [{ name: 'a/b' }, { version: '1/../2' }, { architecture: 'amd64/..' }, { sha256: 'AB'.repeat(32) }, { priority: 'urgent' }]) {
      expect(debRefSchema.safeParse({ ...deb({ name: 'x', version: '1' }), ...bad }).success).toBe(false);
    }
  });
});

describe('where an archive keeps a package', () => {
  test('pool path by source, lib* sources under four letters, version without its epoch', () => {
    expect(poolPath(deb({ name: 'bsdutils', version: '1:2.38.1-5+deb12u3', source: 'util-linux' }))).toBe('pool/main/u/util-linux/bsdutils_2.38.1-5+deb12u3_amd64.deb');
    expect(poolPath(deb({ name: 'libc6', version: '2.36-9+deb12u14', source: 'glibc' }))).toBe('pool/main/g/glibc/libc6_2.36-9+deb12u14_amd64.deb');
    expect(poolPath(deb({ name: 'libacl1', version: '2.3.1-3', source: 'acl' }))).toBe('pool/main/a/acl/libacl1_2.3.1-3_amd64.deb');
    expect(poolPath(deb({ name: 'libcap2', version: '1:2.66-4', architecture: 'amd64' }))).toBe('pool/main/libc/libcap2/libcap2_2.66-4_amd64.deb');
    expect(debFileName(deb({ name: 'adduser', version: '3.134', architecture: 'all' }))).toBe('adduser_3.134_all.deb');
  });
});

describe('the local repository index', () => {
  test('sorted by file, with Filename, Size and SHA256, and the archive priority in place of the file own', () => {
    const index = packagesIndex([
      { control: 'Package: b\nPriority: important\nVersion: 1\n', file: 'b_1_all.deb', size: 10, sha256: SHA, priority: 'required' },
      { control: 'Package: a\nPriority: optional\nVersion: 2\n', file: 'a_2_all.deb', size: 20, sha256: SHA },
    ]);
    expect(index).toBe(
      `Package: a\nPriority: optional\nVersion: 2\nFilename: ./a_2_all.deb\nSize: 20\nSHA256: ${SHA}\n\n` +
        `Package: b\nVersion: 1\nPriority: required\nFilename: ./b_1_all.deb\nSize: 10\nSHA256: ${SHA}\n`,
    );
  });

  test('archive priorities are read for the packages asked for, first index wins', () => {
    const into = new Map<string, string>();
    archivePriorities('Package: apt\nVersion: 2.6.1\nArchitecture: amd64\nPriority: required\n\nPackage: vim\nVersion: 9\nArchitecture: amd64\nPriority: optional\n', new Set(['apt 2.6.1 amd64']), into);
    archivePriorities('Package: apt\nVersion: 2.6.1\nArchitecture: amd64\nPriority: important\n', new Set(['apt 2.6.1 amd64']), into);
    expect([...into]).toEqual([['apt 2.6.1 amd64', 'required']]);
  });

  test('package set difference by name and version', () => {
    expect(packageSetDifference([deb({ name: 'a', version: '1' }), deb({ name: 'b', version: '1' })], ['a 1', 'b 2', 'c 1'])).toEqual({ extra: ['b 2', 'c 1'], missing: ['b 1'] });
    expect(packageSetDifference([deb({ name: 'a', version: '1' })], ['a 1'])).toEqual({ extra: [], missing: [] });
  });
});

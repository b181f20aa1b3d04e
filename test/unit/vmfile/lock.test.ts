import { appendFile, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { cachedSha256, sha256File } from '../../../src/store/digest.js';
import type { BoxMetadata } from '../../../src/vmfile/box-metadata.js';
import { installStaged, makeStaging, type InstalledBox } from '../../../src/box/store.js';
import { ConfigError } from '../../../src/errors.js';

import type { BoxRef, MachineConfig, Project } from '../../../src/vmfile/config.js';
import { checkLock } from '../../../src/lifecycle/box.js';
import { readLockFile } from '../../../src/store/lockfile.js';
import { compareEntry, entryFor, formatLockFile, LOCK_FILE_NAME, lockedBoxRef, parseLockFile, type LockEntry } from '../../../src/vmfile/lock.js';
import { tempDir } from '../temp-dir.js';

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);
const C = 'c'.repeat(64);
const R1 = '1'.repeat(64);
const R2 = '2'.repeat(64);

function recipeBox(overrides: { name?: string; version?: string; sha256?: string; recipeHash?: string } = {}): BoxMetadata {
  return {
    name: overrides.name ?? 'debian-12',
    version: overrides.version ?? '2026.11.1',
    architecture: 'x86_64',
    disk: { file: 'disk.qcow2', format: 'qcow2', sha256: overrides.sha256 ?? A, virtualSize: 3 * 1024 ** 3 },
    boot: { type: 'kernel', kernel: 'kernel', initrd: 'initrd', cmdline: 'root=/dev/vda' },
    user: 'vm',
    created: '2026-11-01T00:00:00.000Z',
    source: {
      kind: 'recipe',
      recipe: 'debian-12',
      recipeHash: overrides.recipeHash ?? R1,
      suite: 'bookworm',
      mirror: 'deb http://deb.debian.org/debian bookworm main',
      packages: ['bash 5.2'],
      sourceDateEpoch: 1_700_000_000,
      built: '2026-11-01T00:00:00.000Z',
    },
  };
}

const locked: LockEntry = entryFor(recipeBox());

describe('compareEntry', () => {
  test.each<[string, BoxMetadata, string, string[]]>([
    ['the same box', recipeBox(), A, []],
    ['another box name', recipeBox({ name: 'ubuntu' }), A, ['box: Vmfile.lock has "debian-12", the Vmfile now uses "ubuntu"']],
    ['another version', recipeBox({ version: '2026.11.2' }), A, ['version: Vmfile.lock has 2026.11.1, the installed box is 2026.11.2']],
    ['a rebuilt box (box.json and disk agree, the lock does not)', recipeBox({ sha256: B }), B, [`disk sha256: Vmfile.lock has ${A}, the installed box has ${B} (a different build of the box)`]],
    [
      'a disk modified in place',
      recipeBox(),
      B,
      [`disk sha256: Vmfile.lock and box.json have ${A}, but the disk file now hashes to ${B} (it was modified after the box was installed)`],
    ],
    ['three different digests', recipeBox({ sha256: B }), C, [`disk sha256: Vmfile.lock has ${A}, box.json has ${B}, and the disk file hashes to ${C}`]],
    ['a disk the lock accepted after it was modified (lock --update)', recipeBox({ sha256: B }), A, []],
    ['another recipe', recipeBox({ recipeHash: R2 }), A, [`recipe hash: Vmfile.lock has ${R1}, the box was built from ${R2}`]],
    [
      'everything at once',
      recipeBox({ version: '2026.12.1', sha256: B, recipeHash: R2 }),
      B,
      [
        'version: Vmfile.lock has 2026.11.1, the installed box is 2026.12.1',
        `disk sha256: Vmfile.lock has ${A}, the installed box has ${B} (a different build of the box)`,
        `recipe hash: Vmfile.lock has ${R1}, the box was built from ${R2}`,
      ],
    ],
  ])('%s', (_label, metadata, diskSha256, differences) => {
    expect(compareEntry(locked, { metadata, diskSha256 })).toEqual(differences);
  });

  test('an imported box against a lock made from a recipe box', () => {
    const imported: BoxMetadata = { ...recipeBox(), source: { kind: 'import', file: 'x.qcow2', format: 'qcow2' } };
    expect(compareEntry(locked, { metadata: imported, diskSha256: A })).toEqual([`recipe hash: Vmfile.lock has ${R1}, the box was built from (not built from a recipe)`]);
  });
});

const CATALOG = 'https://boxes.example/org/name.json';
const FILE_URL = 'https://boxes.example/org/name/1.0/libvirt.box';

/** A box downloaded through a catalog, as box add records it. */
function catalogBox(version = '1.0'): BoxMetadata {
  return {
    ...recipeBox({ name: 'org/name', version }),
    source: { kind: 'import', file: 'libvirt.box', format: 'vagrant-libvirt', url: FILE_URL, catalog: CATALOG, checksum: `sha256:${C}` },
  };
}

describe('lockedBoxRef', () => {
  test.each<[string, { name: string; version?: string }, LockEntry | undefined, { name: string; version?: string; fromLock: boolean }]>([
    ['no lock entry: the Vmfile as it is', { name: 'debian-12' }, undefined, { name: 'debian-12', fromLock: false }],
    ['unpinned Vmfile: the locked version', { name: 'debian-12' }, locked, { name: 'debian-12', version: '2026.11.1', fromLock: true }],
    ['a version pinned in the Vmfile wins', { name: 'debian-12', version: '2026.12.1' }, locked, { name: 'debian-12', version: '2026.12.1', fromLock: false }],
    ['another box in the Vmfile: the lock does not apply', { name: 'ubuntu' }, locked, { name: 'ubuntu', fromLock: false }],
  ])('%s', (_label, ref, entry, expected) => {
    expect(lockedBoxRef(ref, entry)).toEqual(expected);
  });

  const fromCatalog = entryFor(catalogBox());
  const fromUrl: LockEntry = { ...entryFor(catalogBox()), url: 'http://127.0.0.1/x.box' };
  delete fromUrl.catalog;

  test.each<[string, BoxRef, LockEntry, BoxRef & { fromLock: boolean }]>([
    // Vmfile.lock is text anyone can edit in a pull request: it pins a version, never a source.
    ['the lock\'s catalog is not a source: only the locked version', { name: 'org/name' }, fromCatalog, { name: 'org/name', version: '1.0', fromLock: true }],
    ['the lock\'s box file URL is not a source either', { name: 'org/name' }, fromUrl, { name: 'org/name', version: '1.0', fromLock: true }],
    ['a recipe box pinned with a catalog by an edited lock: built here, never downloaded', { name: 'debian-12' }, { ...locked, catalog: 'http://evil.example/debian-12.json', version: '9999' }, { name: 'debian-12', version: '9999', fromLock: true }],
    [
      'the Vmfile\'s url is where the locked version comes from',
      { name: 'org/name', url: 'https://mirror.example/c.json' },
      fromCatalog,
      { name: 'org/name', version: '1.0', url: 'https://mirror.example/c.json', fromLock: true },
    ],
    [
      'the Vmfile\'s box file url keeps its own checksum, never the lock\'s',
      { name: 'org/name', url: 'https://mirror.example/x.box', checksum: `sha256:${A}` },
      fromUrl,
      { name: 'org/name', version: '1.0', url: 'https://mirror.example/x.box', checksum: `sha256:${A}`, fromLock: true },
    ],
    [
      'a range the locked version is in: the locked version, from the Vmfile\'s url',
      { name: 'org/name', constraints: [{ operator: '>=', version: '1.0' }], url: CATALOG },
      fromCatalog,
      { name: 'org/name', version: '1.0', url: CATALOG, fromLock: true },
    ],
    [
      'a range the locked version is not in: the Vmfile wins (and the lock check says so)',
      { name: 'org/name', constraints: [{ operator: '>=', version: '2' }], url: CATALOG },
      fromCatalog,
      { name: 'org/name', constraints: [{ operator: '>=', version: '2' }], url: CATALOG, fromLock: false },
    ],
  ])('downloads: %s', (_label, ref, entry, expected) => {
    expect(lockedBoxRef(ref, entry)).toEqual(expected);
  });
});

describe('a box that was downloaded', () => {
  test('its lock entry records the file URL, the catalog and the checksum, after the fields older locks have', () => {
    const entry = entryFor(catalogBox());
    expect(entry).toEqual({ box: 'org/name', version: '1.0', sha256: A, source: 'import', url: FILE_URL, catalog: CATALOG, checksum: `sha256:${C}` });
    const text = formatLockFile({ lockVersion: 1, machines: { default: entry } });
    expect(Object.keys(JSON.parse(text).machines.default)).toEqual(['box', 'version', 'sha256', 'source', 'url', 'catalog', 'checksum']);
    expect(formatLockFile(parseLockFile(text, LOCK_FILE_NAME))).toBe(text);
    expect(JSON.parse(text).lockVersion).toBe(1);
  });

  test('credentials in a box.json written before vmfile redacted them never reach the lock', () => {
    const old = catalogBox();
    old.source = { kind: 'import', file: 'libvirt.box', format: 'vagrant-libvirt', url: 'https://robot:secret@boxes.example/x.box', catalog: 'https://robot:secret@boxes.example/c.json' };
    expect(entryFor(old)).toMatchObject({ url: 'https://***@boxes.example/x.box', catalog: 'https://***@boxes.example/c.json' });
  });

  test('a box built or imported from a file records none of them, as before', () => {
    expect(Object.keys(entryFor(recipeBox()))).toEqual(['box', 'version', 'sha256', 'source', 'recipe']);
  });

  test.each([
    ['a file:// URL', { url: 'file:///etc/shadow' }, /machines\.default\.url: expected an http:\/\/ or https:\/\/ URL, not file:/],
    ['a catalog URL with a newline', { catalog: 'http://x/a\nb' }, /machines\.default\.catalog: expected a URL without spaces or control characters/],
    ['an md5 checksum', { checksum: `md5:${'a'.repeat(32)}` }, /machines\.default\.checksum: expected sha256:HEX, sha384:HEX or sha512:HEX/],
  ])('a lock from a repository with %s is refused', (_label, fields, message) => {
    const text = JSON.stringify({ lockVersion: 1, machines: { default: { ...entryFor(recipeBox()), ...fields } } });
    expect(() => parseLockFile(text, 'Vmfile.lock')).toThrow(message);
  });
});

describe('the file format', () => {
  test('keys in a fixed order, machines sorted, final newline; parses back to the same lock', () => {
    const text = formatLockFile({ lockVersion: 1, machines: { web: { ...locked }, db: entryFor(recipeBox({ name: 'pg' })) } });
    expect(text.endsWith('}\n')).toBe(true);
    expect(Object.keys(JSON.parse(text).machines)).toEqual(['db', 'web']);
    expect(Object.keys(JSON.parse(text).machines.web)).toEqual(['box', 'version', 'sha256', 'source', 'recipe']);
    expect(formatLockFile(parseLockFile(text, LOCK_FILE_NAME))).toBe(text);
  });

  test('the packages of a box built from a recipe: one per line, in a fixed key order, and they parse back', () => {
    const box = recipeBox();
    if (box.source.kind !== 'recipe') throw new Error('recipe box expected');
    box.source.debs = [
      { sha256: B, name: 'bsdutils', priority: 'required', version: '1:2.38.1-5', architecture: 'amd64', source: 'util-linux' },
      { name: 'adduser', version: '3.134', architecture: 'all', sha256: C },
    ];
    const text = formatLockFile({ lockVersion: 1, machines: { default: entryFor(box) } });
    expect(text).toContain(`        "packages": [\n          {"name":"bsdutils","version":"1:2.38.1-5","architecture":"amd64","source":"util-linux","priority":"required","sha256":"${B}"},\n          {"name":"adduser","version":"3.134","architecture":"all","sha256":"${C}"}\n        ]`);
    expect(formatLockFile(parseLockFile(text, LOCK_FILE_NAME))).toBe(text);
    expect(parseLockFile(text, LOCK_FILE_NAME).machines['default']?.recipe?.packages?.[0]?.source).toBe('util-linux');
  });

  test.each([
    ['a package name that is a path', JSON.stringify({ lockVersion: 1, machines: { default: { ...locked, recipe: { ...locked.recipe, packages: [{ name: '../x', version: '1', architecture: 'all', sha256: A }] } } } }), /machines\.default\.recipe\.packages\[0\]\.name: expected a Debian package name/],
    ['not JSON', '{', /is not valid JSON/],
    ['a newer format', JSON.stringify({ lockVersion: 2, machines: {} }), /written by a newer vmfile/],
    ['a bad digest', JSON.stringify({ lockVersion: 1, machines: { default: { ...locked, sha256: 'xyz' } } }), /machines\.default\.sha256: expected 64 lower-case hex digits/],
    ['an unknown key', JSON.stringify({ lockVersion: 1, machines: {}, extra: 1 }), /unknown key "extra"/],
    // Checked when the file is read, before any box is built or downloaded under that version.
    ['a version that is a path', JSON.stringify({ lockVersion: 1, machines: { default: { ...locked, version: '../x' } } }), /^Vmfile\.lock is invalid:\n {2}- machines\.default\.version: expected a box version/],
    ['a version with a newline', JSON.stringify({ lockVersion: 1, machines: { default: { ...locked, version: '1\n2' } } }), /machines\.default\.version: expected a box version/],
    ['a box name that is a path', JSON.stringify({ lockVersion: 1, machines: { default: { ...locked, box: '../../x' } } }), /machines\.default\.box: expected a box name/],
  ])('%s is a ConfigError that says what is wrong', (_label, text, message) => {
    expect(() => parseLockFile(text, 'Vmfile.lock')).toThrow(ConfigError);
    expect(() => parseLockFile(text, 'Vmfile.lock')).toThrow(message);
  });
});

describe('checkLock', () => {
  const machine = { name: 'default', box: { name: 'debian-12' } } as MachineConfig;

  /** A box in a real store whose disk is a small file, with box.json holding its real digest. */
  async function setup(): Promise<{ project: Project; box: InstalledBox; home: string }> {
    const home = await tempDir();
    const dir = await tempDir();
    const staging = await makeStaging(home, 'add');
    await writeFile(join(staging, 'disk.qcow2'), 'the disk');
    await writeFile(join(staging, 'kernel'), 'the kernel');
    await writeFile(join(staging, 'initrd'), 'the initrd');
    const box = await installStaged(home, staging, recipeBox({ sha256: await sha256File(join(staging, 'disk.qcow2')) }));
    return { project: { dir, vmfilePath: join(dir, 'Vmfile.ts'), loadedFiles: [join(dir, 'Vmfile.ts')], machines: [machine] }, box, home };
  }

  test('first use writes the entry, the next use verifies it and leaves the file as it was', async () => {
    const { project, box } = await setup();
    expect(await checkLock(project, machine, box, { update: false })).toBe('written');
    const text = await readFile(join(project.dir, 'Vmfile.lock'), 'utf8');
    expect(JSON.parse(text).machines.default).toMatchObject({ box: 'debian-12', version: '2026.11.1', sha256: box.metadata.disk.sha256, source: 'recipe' });
    expect(await checkLock(project, machine, box, { update: false })).toBe('verified');
    expect(await readFile(join(project.dir, 'Vmfile.lock'), 'utf8')).toBe(text);
  });

  test('a disk modified after the lock was written is refused, naming the machine, the difference and the fix; --update accepts it', async () => {
    const { project, box } = await setup();
    await checkLock(project, machine, box, { update: false });
    await appendFile(box.paths.disk, 'tampered');
    const error = await checkLock(project, machine, box, { update: false }).catch((reason: unknown) => reason);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).exitCode).toBe(78);
    expect((error as ConfigError).message).toContain('machine "default": box debian-12 2026.11.1 does not match');
    expect((error as ConfigError).message).toContain('it was modified after the box was installed');
    expect((error as ConfigError).message).toContain('Nothing was created or booted.');
    expect((error as ConfigError).hint).toContain('vmfile lock --update');

    expect(await checkLock(project, machine, box, { update: true })).toBe('updated');
    expect((await readLockFile(project.dir)).machines['default']?.sha256).toBe(await sha256File(box.paths.disk));
    expect(await checkLock(project, machine, box, { update: false })).toBe('verified');
  });

  test('a disk that already differs from its box.json is never locked in on first use', async () => {
    const { project, box } = await setup();
    await appendFile(box.paths.disk, 'tampered');
    await expect(checkLock(project, machine, box, { update: false })).rejects.toThrow(/was not written:\n {2}- disk sha256: box\.json records/);
    expect((await readLockFile(project.dir)).machines).toEqual({});
  });

  test('the disk is hashed once, then read from the cache until the file changes', async () => {
    const { box } = await setup();
    expect(await cachedSha256(box.paths.disk, box.paths.diskDigestCache)).toEqual({ sha256: box.metadata.disk.sha256, cached: false });
    expect(await cachedSha256(box.paths.disk, box.paths.diskDigestCache)).toEqual({ sha256: box.metadata.disk.sha256, cached: true });
    // Rewritten with other bytes of the same size: mtime/ctime change, so it is hashed again.
    await writeFile(box.paths.disk, 'THE DISK');
    const again = await cachedSha256(box.paths.disk, box.paths.diskDigestCache);
    expect(again.cached).toBe(false);
    expect(again.sha256).not.toBe(box.metadata.disk.sha256);
  });
});

describe('kernel and initrd digests', () => {
  const K1 = 'e'.repeat(64);
  const K2 = 'f'.repeat(64);
  const I1 = '3'.repeat(64);
  const withBoot = (kernelSha256?: string, initrdSha256?: string): BoxMetadata => ({
    ...recipeBox(),
    boot: { type: 'kernel', kernel: 'kernel', initrd: 'initrd', cmdline: 'root=/dev/vda', ...(kernelSha256 === undefined ? {} : { kernelSha256 }), ...(initrdSha256 === undefined ? {} : { initrdSha256 }) },
  });
  const entry: LockEntry = { ...entryFor(recipeBox()), kernelSha256: K1, initrdSha256: I1 };

  test.each<[string, BoxMetadata, { kernelSha256?: string; initrdSha256?: string }, string[]]>([
    ['the same files', withBoot(K1, I1), { kernelSha256: K1, initrdSha256: I1 }, []],
    ['a kernel modified in place', withBoot(K1, I1), { kernelSha256: K2, initrdSha256: I1 }, [`kernel sha256: Vmfile.lock and box.json have ${K1}, but the kernel file now hashes to ${K2} (it was modified after the box was installed)`]],
    ['a rebuilt kernel', withBoot(K2, I1), { kernelSha256: K2, initrdSha256: I1 }, [`kernel sha256: Vmfile.lock has ${K1}, the installed box has ${K2} (a different build of the box)`]],
    ['an old box with no digests, whose kernel changed', withBoot(), { kernelSha256: K2, initrdSha256: I1 }, [`kernel sha256: Vmfile.lock has ${K1}, box.json records none, and the kernel file hashes to ${K2}`]],
    ['a box without an initrd now', withBoot(K1, I1), { kernelSha256: K1 }, [`initrd sha256: Vmfile.lock has ${I1}, the installed box has no initrd`]],
  ])('%s', (_label, metadata, files, differences) => {
    expect(compareEntry(entry, { metadata, diskSha256: A, ...files })).toEqual(differences);
  });

  test('a lock written before the digests were recorded compares none (old locks keep working)', () => {
    expect(compareEntry(locked, { metadata: withBoot(K1, I1), diskSha256: A, kernelSha256: K2, initrdSha256: K2 })).toEqual([]);
  });

  test('entries keep the digests in their fixed place, and old entries without them still parse', () => {
    const text = formatLockFile({ lockVersion: 1, machines: { web: { ...entry }, old: { ...locked } } });
    expect(Object.keys(JSON.parse(text).machines.web)).toEqual(['box', 'version', 'sha256', 'kernelSha256', 'initrdSha256', 'source', 'recipe']);
    expect(parseLockFile(text, LOCK_FILE_NAME).machines['old']).toEqual(locked);
    expect(() => parseLockFile(JSON.stringify({ lockVersion: 1, machines: { web: { ...entry, kernelSha256: 'zz' } } }), LOCK_FILE_NAME)).toThrow(/machines\.web\.kernelSha256: expected 64 lower-case hex digits/);
  });

  test('entryFor takes box.json\'s digests, or the files\' for a box that records none', () => {
    expect(entryFor(withBoot(K1, I1), { kernelSha256: K2, initrdSha256: K2 })).toMatchObject({ kernelSha256: K1, initrdSha256: I1 });
    expect(entryFor(withBoot(), { kernelSha256: K2, initrdSha256: I1 })).toMatchObject({ kernelSha256: K2, initrdSha256: I1 });
    expect(entryFor({ ...recipeBox(), boot: { type: 'firmware', firmware: 'bios' } }, { kernelSha256: K2 })).not.toHaveProperty('initrdSha256');
  });
});

describe('checkLock with the kernel and initrd of a real store', () => {
  const machine = { name: 'default', box: { name: 'debian-12' } } as MachineConfig;

  async function setup(recordDigests: boolean): Promise<{ project: Project; box: InstalledBox }> {
    const home = await tempDir();
    const dir = await tempDir();
    const staging = await makeStaging(home, 'add');
    await writeFile(join(staging, 'disk.qcow2'), 'the disk');
    await writeFile(join(staging, 'kernel'), 'the kernel');
    await writeFile(join(staging, 'initrd'), 'the initrd');
    const metadata = recipeBox({ sha256: await sha256File(join(staging, 'disk.qcow2')) });
    if (recordDigests && metadata.boot.type === 'kernel') {
      metadata.boot = { ...metadata.boot, kernelSha256: await sha256File(join(staging, 'kernel')), initrdSha256: await sha256File(join(staging, 'initrd')) };
    }
    const box = await installStaged(home, staging, metadata);
    return { project: { dir, vmfilePath: join(dir, 'Vmfile.ts'), loadedFiles: [join(dir, 'Vmfile.ts')], machines: [machine] }, box };
  }

  test('first use locks the files of a box that records no digests, and a kernel changed afterwards is refused', async () => {
    const { project, box } = await setup(false);
    expect(await checkLock(project, machine, box, { update: false })).toBe('written');
    expect((await readLockFile(project.dir)).machines['default']).toMatchObject({ kernelSha256: await sha256File(box.paths.kernel), initrdSha256: await sha256File(box.paths.initrd) });
    await writeFile(box.paths.kernel, 'another kernel');
    const error = await checkLock(project, machine, box, { update: false }).catch((reason: unknown) => reason);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toContain('kernel sha256: Vmfile.lock has');
    expect((error as ConfigError).message).toContain('Nothing was created or booted.');
    expect(await checkLock(project, machine, box, { update: true })).toBe('updated');
    expect((await readLockFile(project.dir)).machines['default']?.kernelSha256).toBe(await sha256File(box.paths.kernel));
  });

  test('an initrd that differs from its box.json is never locked in on first use', async () => {
    const { project, box } = await setup(true);
    await appendFile(box.paths.initrd, 'tampered');
    await expect(checkLock(project, machine, box, { update: false })).rejects.toThrow(/was not written:\n {2}- initrd sha256: box\.json records [0-9a-f]{64}, but the initrd file hashes to/);
  });

  test('a missing kernel is a ConfigError naming the box and the file', async () => {
    const { project, box } = await setup(true);
    await rm(box.paths.kernel);
    await expect(checkLock(project, machine, box, { update: false })).rejects.toThrow(/box debian-12 2026\.11\.1 has no kernel file .*kernel/);
  });
});

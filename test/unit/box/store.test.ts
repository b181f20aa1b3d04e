import { mkdir, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { describe, expect, test } from 'vitest';
import type { BoxMetadata } from '../../../src/vmfile/box-metadata.js';
import { findBox, installStaged, listBoxes, makeStaging, removeBox } from '../../../src/box/store.js';
import { UserError } from '../../../src/errors.js';
import { boxDir, boxesDir, boxPaths, stagingDir } from '../../../src/store/layout.js';
import { tempDir } from '../temp-dir.js';

function metadata(name: string, version: string): BoxMetadata {
  return {
    name,
    version,
    architecture: 'x86_64',
    disk: { file: 'disk.qcow2', format: 'qcow2', sha256: 'ab'.repeat(32), virtualSize: 2 * 1024 ** 3 },
    boot: { type: 'firmware', firmware: 'bios' },
    user: 'vm',
    created: '2026-11-10T00:00:00.000Z',
    source: { kind: 'import', file: `${name}.qcow2`, format: 'qcow2' },
  };
}

/** Stages a box with a small disk file and installs it, as `box add` does. */
async function install(home: string, name: string, version: string): Promise<void> {
  const staging = await makeStaging(home, `add-${name}`);
  await writeFile(join(staging, 'disk.qcow2'), `disk of ${name} ${version}`);
  await installStaged(home, staging, metadata(name, version));
}

async function userError(promise: Promise<unknown>): Promise<UserError> {
  const error: unknown = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  if (!(error instanceof UserError)) throw new Error(`expected a UserError, got ${String(error)}`);
  return error;
}

async function installed(home: string): Promise<string[]> {
  return (await listBoxes(home)).map((box) => `${box.metadata.name}@${box.metadata.version}`);
}

describe('installStaged', () => {
  test('moves the staging directory into place with its box.json', async () => {
    const home = await tempDir();
    const staging = await makeStaging(home, 'add-debian');
    await writeFile(join(staging, 'disk.qcow2'), 'disk');

    const box = await installStaged(home, staging, metadata('debian', '2026.11.2'));

    const paths = boxPaths(home, 'debian', '2026.11.2');
    expect(box.paths).toEqual(paths);
    expect(await readFile(paths.disk, 'utf8')).toBe('disk');
    expect(JSON.parse(await readFile(paths.metadata, 'utf8'))).toEqual(metadata('debian', '2026.11.2'));
    await expect(stat(staging)).rejects.toThrow(/ENOENT/);
  });

  test('the same name and version twice is a UserError with a hint, and the first stays intact', async () => {
    const home = await tempDir();
    await install(home, 'debian', '2026.11.2');
    const staging = await makeStaging(home, 'add-debian');
    await writeFile(join(staging, 'disk.qcow2'), 'second disk');

    const error = await userError(installStaged(home, staging, metadata('debian', '2026.11.2')));

    expect(error.exitCode).toBe(1);
    expect(error.message).toBe('box debian version 2026.11.2 already exists');
    expect(error.hint).toBe('remove it first (vmfile box remove debian --version 2026.11.2) or choose another --version');
    expect(await readFile(boxPaths(home, 'debian', '2026.11.2').disk, 'utf8')).toBe('disk of debian 2026.11.2');
  });
});

describe('listBoxes and findBox', () => {
  test('an empty or missing store has no boxes', async () => {
    const home = await tempDir();
    expect(await listBoxes(home)).toEqual([]);
    expect(await findBox(home, { name: 'debian' })).toBeUndefined();
  });

  test('lists by name, then by numeric-aware version', async () => {
    const home = await tempDir();
    for (const [name, version] of [
      ['debian', '2026.11.10'],
      ['alpine', '3.20'],
      ['debian', '2026.11.2'],
      ['debian', '2026.9.30'],
    ] as const) {
      await install(home, name, version);
    }

    expect(await installed(home)).toEqual(['alpine@3.20', 'debian@2026.9.30', 'debian@2026.11.2', 'debian@2026.11.10']);
  });

  test('without a pinned version the newest is chosen: 2026.11.10 over 2026.11.2', async () => {
    const home = await tempDir();
    await install(home, 'debian', '2026.11.10');
    await install(home, 'debian', '2026.11.2');

    const box = await findBox(home, { name: 'debian' });

    expect(box?.metadata.version).toBe('2026.11.10');
    expect(box?.paths.dir).toBe(boxPaths(home, 'debian', '2026.11.10').dir);
  });

  test('a pinned version is found exactly, or not at all', async () => {
    const home = await tempDir();
    await install(home, 'debian', '2026.11.10');
    await install(home, 'debian', '2026.11.2');

    expect((await findBox(home, { name: 'debian', version: '2026.11.2' }))?.metadata.version).toBe('2026.11.2');
    expect(await findBox(home, { name: 'debian', version: '2026.11.3' })).toBeUndefined();
    expect(await findBox(home, { name: 'ubuntu' })).toBeUndefined();
  });

  test('with constraints, the newest version that meets them', async () => {
    const home = await tempDir();
    for (const version of ['1.9', '1.10', '2.0']) await install(home, 'debian', version);

    expect((await findBox(home, { name: 'debian', constraints: [{ operator: '<', version: '2' }] }))?.metadata.version).toBe('1.10');
    expect((await findBox(home, { name: 'debian', constraints: [{ operator: '~>', version: '1.9' }] }))?.metadata.version).toBe('1.10');
    expect(await findBox(home, { name: 'debian', constraints: [{ operator: '>=', version: '3' }] })).toBeUndefined();
  });

  test('directories without valid metadata, and half-removed ones, are not boxes', async () => {
    const home = await tempDir();
    await install(home, 'debian', '1');
    await mkdir(join(boxDir(home, 'debian'), '2'), { recursive: true });
    await mkdir(join(boxDir(home, 'debian'), '3'), { recursive: true });
    await writeFile(join(boxDir(home, 'debian'), '3', 'box.json'), '{"name":"debian"}');
    // Left by an older vmfile killed while removing: a whole box.json under another name.
    await mkdir(join(boxDir(home, 'debian'), `4.removing-123`), { recursive: true });
    await writeFile(join(boxDir(home, 'debian'), '4.removing-123', 'box.json'), JSON.stringify(metadata('debian', '4')));

    expect(await installed(home)).toEqual(['debian@1']);
  });
});

describe('Vagrant-style names ("org/name")', () => {
  test('install, list, find and remove through one directory level, spelt -VAGRANTSLASH-', async () => {
    const home = await tempDir();
    await install(home, 'org/name', '1.0');
    await install(home, 'org/name', '2.0');
    await install(home, 'org', '1.0');

    expect(await readdir(boxesDir(home))).toEqual(expect.arrayContaining(['org', 'org-VAGRANTSLASH-name']));
    expect(await installed(home)).toEqual(['org@1.0', 'org/name@1.0', 'org/name@2.0']);
    expect((await findBox(home, { name: 'org/name' }))?.paths.dir).toBe(join(boxesDir(home), 'org-VAGRANTSLASH-name', '2.0'));

    await removeBox(home, 'org/name');
    expect(await installed(home)).toEqual(['org@1.0']);
    expect(await readdir(boxesDir(home))).toEqual(['org']);
    expect(await readdir(stagingDir(home))).toEqual([]);
  });

  test('a box.json that claims another name is not listed from a directory that is not its own', async () => {
    const home = await tempDir();
    await install(home, 'org/name', '1.0');
    // Copied by hand under the name the marker spells: the directory is not "org/name"'s to claim twice.
    await mkdir(join(boxesDir(home), 'elsewhere', '1.0'), { recursive: true });
    await writeFile(join(boxesDir(home), 'elsewhere', '1.0', 'box.json'), JSON.stringify(metadata('org/name', '1.0')));

    expect(await installed(home)).toEqual(['org/name@1.0']);
  });
});

describe('removeBox', () => {
  test('removes one version and keeps the others', async () => {
    const home = await tempDir();
    await install(home, 'debian', '2026.11.2');
    await install(home, 'debian', '2026.11.10');

    const removed = await removeBox(home, 'debian', '2026.11.2');

    expect(removed.map((box) => box.version)).toEqual(['2026.11.2']);
    expect(await installed(home)).toEqual(['debian@2026.11.10']);
    expect(await readdir(boxDir(home, 'debian'))).toEqual(['2026.11.10']);
  });

  test('without a version removes every version and the name directory', async () => {
    const home = await tempDir();
    await install(home, 'debian', '2026.11.2');
    await install(home, 'debian', '2026.11.10');
    await install(home, 'alpine', '3.20');

    const removed = await removeBox(home, 'debian');

    expect(removed.map((box) => box.version)).toEqual(['2026.11.2', '2026.11.10']);
    expect(await installed(home)).toEqual(['alpine@3.20']);
    expect((await readdir(boxesDir(home))).sort()).toEqual(['alpine']);
  });

  test.each([
    ['an unknown box', 'ubuntu', undefined, 'box ubuntu is not installed'],
    ['an unknown version', 'debian', '1999.1.1', 'box debian version 1999.1.1 is not installed'],
  ])('%s is a UserError', async (_label, name, version, message) => {
    const home = await tempDir();
    await install(home, 'debian', '2026.11.2');

    const error = await userError(removeBox(home, name, version));

    expect(error.message).toBe(message);
    expect(error.hint).toBe('see installed boxes with: vmfile box list');
    expect(await installed(home)).toEqual(['debian@2026.11.2']);
  });
});

describe('staging left by a process that is gone', () => {
  /** A pid that no process has: beyond the kernel's pid_max. */
  const deadPid = 4_194_305;

  test('is swept by the next makeStaging; a live owner\'s and an unrecognised name are kept, a reused pid\'s is not', async () => {
    const home = await tempDir();
    const live = await makeStaging(home, 'build-debian-12');
    const root = stagingDir(home);
    await mkdir(join(root, `add-x@${deadPid}@12345-abcdef`, 'extract'), { recursive: true });
    await writeFile(join(root, `add-x@${deadPid}@12345-abcdef`, 'extract', 'disk.img'), 'half a download');
    await mkdir(join(root, `build-y@${process.pid}@1-abcdef`));
    await mkdir(join(root, 'something-else'));

    const next = await makeStaging(home, 'add-z');

    // build-y names this pid with another start time: a reused pid, so its owner is gone too.
    expect((await readdir(root)).sort()).toEqual([basename(live), basename(next), 'something-else'].sort());
    expect(basename(live)).toMatch(new RegExp(`^build-debian-12@${process.pid}@\\d+-`));
  });

  test('a killed removal leaves no box and no directory behind once anything is staged again', async () => {
    const home = await tempDir();
    await install(home, 'debian', '1');
    await install(home, 'debian', '2');
    // What removeBox leaves when killed between its rename and its rm.
    const doomed = join(stagingDir(home), `remove-debian@${deadPid}@1-abcdef`);
    await mkdir(doomed, { recursive: true });
    await rename(boxPaths(home, 'debian', '1').dir, join(doomed, 'box'));

    expect(await installed(home)).toEqual(['debian@2']);
    await install(home, 'alpine', '3');
    expect(await readdir(stagingDir(home))).toEqual([]);
  });
});

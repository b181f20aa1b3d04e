/**
 * The package store, the sources a locked rebuild gathers from, the bundle that carries
 * packages to another host, and the local repository mmdebstrap is given, on real .deb
 * files (dpkg-deb --build) and real HTTP servers on 127.0.0.1.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { importDebBundle, writeDebBundle } from '../../../src/box/deb-bundle.js';
import { debsDir, hasStoredDeb, pruneDebs, storedDeb, storeDeb } from '../../../src/box/deb-store.js';
import { poolPath } from '../../../src/box/debs.js';
import { fetchMissingPins } from '../../../src/provision/pinned-source.js';
import { gatherLockedDebs, networkSources, serveRepository, snapshotStamp, writeLocalRepository, type PackageSource } from '../../../src/box/locked-packages.js';
import { UserError } from '../../../src/errors.js';
import type { DebRef } from '../../../src/vmfile/deb-ref.js';
import { quiet } from '../quiet-reporter.js';
import { tempDir } from '../temp-dir.js';

/** A real, tiny .deb and the DebRef that pins it. */
async function makeDeb(dir: string, name: string, version: string, extra = ''): Promise<{ file: string; deb: DebRef }> {
  const root = join(dir, `${name}-${version}`);
  await mkdir(join(root, 'DEBIAN'), { recursive: true });
  await mkdir(join(root, 'usr/share/doc', name), { recursive: true });
  await writeFile(join(root, 'DEBIAN/control'), `Package: ${name}\nVersion: ${version}\nArchitecture: all\nMaintainer: t <t@example.org>\nPriority: optional\nDescription: test package${extra}\n`);
  await writeFile(join(root, 'usr/share/doc', name, 'README'), `${name} ${version}\n`);
  const file = join(dir, `${name}_${version}_all.deb`);
  execFileSync('dpkg-deb', ['--root-owner-group', '-Zgzip', '--build', root, file], { stdio: 'ignore' });
  const sha256 = createHash('sha256').update(await readFile(file)).digest('hex');
  return { file, deb: { name, version, architecture: 'all', sha256 } };
}

const servers: Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await new Promise((resolve) => server.close(resolve));
});

/** Serves `files` (URL path -> bytes) on 127.0.0.1 and records the paths asked for. */
async function serve(files: Map<string, Buffer>): Promise<{ url: string; asked: string[] }> {
  const asked: string[] = [];
  const server = createServer((request, response) => {
    const path = request.url ?? '/';
    asked.push(path);
    const body = files.get(path);
    if (body === undefined) response.writeHead(404).end();
    else response.writeHead(200, { 'content-length': body.length }).end(body);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, asked };
}

async function userError(promise: Promise<unknown>): Promise<UserError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof UserError) return error;
    throw error;
  }
  throw new Error('expected a UserError');
}

describe('the package store', () => {
  test('keeps a file under its digest and refuses one that is not what it claims', async () => {
    const dir = await tempDir();
    const home = join(dir, 'home');
    const { file, deb } = await makeDeb(dir, 'hello', '1.0');
    expect(await storeDeb(home, file, deb, 'build')).toEqual({ path: join(debsDir(home), `${deb.sha256}.deb`) });
    expect(await hasStoredDeb(home, deb.sha256)).toBe('build');
    // Stored again from another origin: the first record stays.
    await storeDeb(home, file, deb, 'import');
    expect(await hasStoredDeb(home, deb.sha256)).toBe('build');
    const other = await makeDeb(dir, 'other', '1.0');
    expect(await storeDeb(home, other.file, deb, 'import')).toEqual({ problem: expect.stringContaining(`hashes to ${other.deb.sha256}, not ${deb.sha256}`) });
  });

  test('a stored file with one byte changed is refused, named, and removed', async () => {
    const dir = await tempDir();
    const home = join(dir, 'home');
    const { file, deb } = await makeDeb(dir, 'hello', '1.0');
    const { path } = (await storeDeb(home, file, deb, 'build')) as { path: string };
    const bytes = await readFile(path);
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 1;
    await writeFile(path, bytes);
    const outcome = await storedDeb(home, deb);
    expect(outcome).toEqual({ tampered: expect.stringContaining('hello 1.0 all') });
    expect(await hasStoredDeb(home, deb.sha256)).toBeUndefined();
  });

  test('prune removes only the files nothing keeps', async () => {
    const dir = await tempDir();
    const home = join(dir, 'home');
    const kept = await makeDeb(dir, 'kept', '1');
    const gone = await makeDeb(dir, 'gone', '1');
    await storeDeb(home, kept.file, kept.deb, 'build');
    await storeDeb(home, gone.file, gone.deb, 'build');
    expect((await pruneDebs(home, new Set([kept.deb.sha256]), { dryRun: true })).files).toBe(1);
    expect((await readdir(debsDir(home))).length).toBe(4);
    expect((await pruneDebs(home, new Set([kept.deb.sha256]), { dryRun: false })).files).toBe(1);
    expect((await readdir(debsDir(home))).sort()).toEqual([`${kept.deb.sha256}.deb`, `${kept.deb.sha256}.json`].sort());
  });
});

describe('network sources', () => {
  test('each archive of the recipe, then the same archives on the snapshot mirror at the build time', () => {
    const sources = networkSources(
      ['deb http://deb.debian.org/debian bookworm main', 'deb http://deb.debian.org/debian bookworm-updates main', 'deb http://deb.debian.org/debian-security bookworm-security main'],
      '2026-11-23T10:15:00.123Z',
      'http://127.0.0.1:9/',
    );
    expect(sources.map((source) => [source.origin, source.label])).toEqual([
      ['mirror', 'http://deb.debian.org/debian'],
      ['mirror', 'http://deb.debian.org/debian-security'],
      ['snapshot', 'http://127.0.0.1:9/archive/debian/20261123T101500Z'],
      ['snapshot', 'http://127.0.0.1:9/archive/debian-security/20261123T101500Z'],
    ]);
    expect(snapshotStamp('not a date')).toBeUndefined();
    expect(networkSources(['deb http://m/debian bookworm main'], undefined, 'http://s').map((source) => source.origin)).toEqual(['mirror']);
  });
});

describe('gathering the locked packages', () => {
  test('store first, then the mirror, then the snapshot mirror; each file checked and stored with its origin', async () => {
    const dir = await tempDir();
    const home = join(dir, 'home');
    const stored = await makeDeb(dir, 'instore', '1');
    const mirrored = await makeDeb(dir, 'onmirror', '1');
    const old = await makeDeb(dir, 'onlysnapshot', '1');
    const newer = await makeDeb(dir, 'onlysnapshot', '2');
    await storeDeb(home, stored.file, stored.deb, 'import');
    // The store's copy of the one on the mirror was changed: refused, said, and fetched again.
    const mirroredBytes = await readFile(mirrored.file);
    await storeDeb(home, mirrored.file, mirrored.deb, 'build');
    const storedPath = join(debsDir(home), `${mirrored.deb.sha256}.deb`);
    const bytes = await readFile(storedPath);
    bytes[0] = (bytes[0] ?? 0) ^ 1;
    await writeFile(storedPath, bytes);
    // The mirror has moved on: it serves version 2 where version 1 is locked, and it also serves a wrong file under a locked name.
    const mirror = await serve(new Map([[`/debian/${poolPath(mirrored.deb)}`, mirroredBytes], [`/debian/${poolPath(newer.deb)}`, await readFile(newer.file)]]));
    const snapshot = await serve(new Map([[`/archive/debian/20261123T000000Z/${poolPath(old.deb)}`, await readFile(old.file)]]));
    const sources = networkSources([`deb ${mirror.url}/debian bookworm main`], '2026-11-23T00:00:00Z', snapshot.url);
    const notices: string[] = [];
    const found = await gatherLockedDebs([stored.deb, mirrored.deb, old.deb], { home, scratch: dir, sources, label: 'box t', reporter: { ...quiet, notice: (text) => notices.push(text) } });
    expect(notices).toEqual([expect.stringMatching(/^box t: refused onmirror 1 all: the stored file .* hashes to [0-9a-f]{64}, not [0-9a-f]{64}; it was removed from the store; fetching it again$/)]);
    expect([...found.keys()].sort()).toEqual([stored.deb.sha256, mirrored.deb.sha256, old.deb.sha256].sort());
    expect(mirror.asked).not.toContain(`/debian/${poolPath(stored.deb)}`);
    expect(await hasStoredDeb(home, mirrored.deb.sha256)).toBe('mirror');
    expect(createHash('sha256').update(await readFile(storedPath)).digest('hex')).toBe(mirrored.deb.sha256);
    expect(await hasStoredDeb(home, old.deb.sha256)).toBe('snapshot');
    expect(await hasStoredDeb(home, newer.deb.sha256)).toBeUndefined();
  });

  test('a file that does not match its digest is refused and named; a package no source has stops with every place tried', async () => {
    const dir = await tempDir();
    const home = join(dir, 'home');
    const wanted = await makeDeb(dir, 'wanted', '1');
    const impostor = await makeDeb(dir, 'wanted', '1', '\n impostor');
    const absent = await makeDeb(dir, 'absent', '1');
    const mirror = await serve(new Map([[`/debian/${poolPath(wanted.deb)}`, await readFile(impostor.file)]]));
    // A source nobody listens on: unreachable, skipped after the first try.
    const dead: PackageSource = { label: 'http://127.0.0.1:1/dead', origin: 'snapshot', urlOf: () => 'http://127.0.0.1:1/x.deb' };
    const sources = [...networkSources([`deb ${mirror.url}/debian bookworm main`], undefined, 'http://unused'), dead];
    const error = await userError(gatherLockedDebs([wanted.deb, absent.deb], { home, scratch: dir, sources, label: 'box t 1', reporter: quiet, idleTimeoutMs: 2000 }));
    expect(error.message).toContain('2 locked packages are in none of the places tried');
    expect(error.message).toContain(`wanted 1 all (sha256 ${wanted.deb.sha256})`);
    expect(error.message).toContain(`absent 1 all (sha256 ${absent.deb.sha256})`);
    expect(error.message).toContain(`tried: the package store; ${mirror.url}/debian; http://127.0.0.1:1/dead (unreachable`);
    expect(error.message).toMatch(/refused:\n {2}- http:.*wanted_1_all\.deb: wanted 1 all: the file hashes to/);
    expect(error.hint).toContain('vmfile lock import');
    expect(await hasStoredDeb(home, wanted.deb.sha256)).toBeUndefined();
    expect(await hasStoredDeb(home, impostor.deb.sha256)).toBeUndefined();
  });
});

describe('the package bundle', () => {
  test('export, then import into another store; a changed byte is refused, named, and nothing is added', async () => {
    const dir = await tempDir();
    const home = join(dir, 'home');
    const a = await makeDeb(dir, 'alpha', '1');
    const b = await makeDeb(dir, 'beta', '2');
    await storeDeb(home, a.file, a.deb, 'build');
    await storeDeb(home, b.file, b.deb, 'build');
    const staging = join(dir, 'staging');
    await mkdir(staging);
    const bundle = join(dir, 'packages.tar');
    expect(await writeDebBundle(home, [a.deb, b.deb, a.deb], bundle, staging, 'Vmfile.lock')).toEqual({ packages: 2 });
    const other = join(dir, 'other');
    const unpack = join(dir, 'unpack');
    await mkdir(unpack);
    const imported = await importDebBundle(other, bundle, unpack);
    expect(imported.added).toBe(2);
    expect(await hasStoredDeb(other, a.deb.sha256)).toBe('import');

    // One byte of beta changed inside the tar (its data is gzip: the byte is in the file, not the header).
    const tar = await readFile(bundle);
    const text = tar.toString('latin1');
    const at = text.indexOf(`${b.deb.sha256}.deb`) + 512 + 200;
    tar[at] = (tar[at] ?? 0) ^ 0xff;
    const tampered = join(dir, 'tampered.tar');
    await writeFile(tampered, tar);
    const third = join(dir, 'third');
    const unpack2 = join(dir, 'unpack2');
    await mkdir(unpack2);
    const error = await userError(importDebBundle(third, tampered, unpack2));
    expect(error.message).toContain(`beta 2 all: ${b.deb.sha256}.deb hashes to`);
    expect(error.message).toContain('Nothing was added to the package store.');
    expect(await hasStoredDeb(third, a.deb.sha256)).toBeUndefined();
  });

  test('members other than packages.json and <sha256>.deb are refused before anything is unpacked', async () => {
    const dir = await tempDir();
    const content = join(dir, 'content');
    await mkdir(content);
    await writeFile(join(content, 'packages.json'), '{}');
    await writeFile(join(content, 'evil.sh'), 'echo hi');
    execFileSync('ln', ['-s', '/etc/passwd', join(content, `${'a'.repeat(64)}.deb`)]);
    const bundle = join(dir, 'bad.tar');
    execFileSync('tar', ['-cf', bundle, '-C', content, 'packages.json', 'evil.sh', `${'a'.repeat(64)}.deb`]);
    const unpack = join(dir, 'unpack');
    await mkdir(unpack);
    const error = await userError(importDebBundle(join(dir, 'home'), bundle, unpack));
    expect(error.message).toContain('"evil.sh" is neither packages.json nor a package named by its sha256');
    expect(error.message).toContain('is a symbolic link, not a regular file');
    expect(await readdir(unpack)).toEqual([]);
  });

  test('export names every package the store lacks and writes nothing', async () => {
    const dir = await tempDir();
    const a = await makeDeb(dir, 'alpha', '1');
    const staging = join(dir, 'staging');
    await mkdir(staging);
    const error = await userError(writeDebBundle(join(dir, 'home'), [a.deb], join(dir, 'out.tar'), staging, 'Vmfile.lock'));
    expect(error.message).toContain(`alpha 1 all (sha256 ${a.deb.sha256}) is not in the package store`);
    await expect(readFile(join(dir, 'out.tar'))).rejects.toThrow();
  });
});

describe('the local repository', () => {
  test('apt-shaped: Packages with the archive priority, Release naming the suite, files served by name on 127.0.0.1', async () => {
    const dir = await tempDir();
    const a = await makeDeb(dir, 'alpha', '1:1.0+x~y');
    const repo = join(dir, 'repo');
    await writeLocalRepository(repo, 'bookworm', [{ ...a.deb, priority: 'required' }], new Map([[a.deb.sha256, a.file]]));
    const packages = await readFile(join(repo, 'Packages'), 'utf8');
    expect(packages).toContain('Package: alpha\n');
    expect(packages).toContain('Priority: required\n');
    expect(packages).not.toContain('Priority: optional');
    expect(packages).toContain(`SHA256: ${a.deb.sha256}\n`);
    expect(await readFile(join(repo, 'Release'), 'utf8')).toContain('Codename: bookworm\n');
    const served = await serveRepository(repo);
    try {
      // As apt asks: "./" kept, "+" and "~" escaped.
      const response = await fetch(`${served.url}/./alpha_1.0%2bx%7ey_all.deb`);
      expect(response.status).toBe(200);
      expect(createHash('sha256').update(Buffer.from(await response.arrayBuffer())).digest('hex')).toBe(a.deb.sha256);
      expect((await fetch(`${served.url}/../../etc/passwd`)).status).toBe(404);
      expect((await fetch(`${served.url}/%2e%2e/Packages`)).status).toBe(200);
      expect((await fetch(`${served.url}/nothing.deb`)).status).toBe(404);
    } finally {
      await served.close();
    }
  });
});

describe("the pinned packages of a machine's steps, on a host that lacks them", () => {
  test("are fetched from the archives of the box's recipe, each checked; one none has stays missing, and nothing is asked for what the store has", async () => {
    const dir = await tempDir();
    const home = join(dir, 'home');
    const [served, stored, absent, lying] = await Promise.all([makeDeb(dir, 'hello', '2.10-3'), makeDeb(dir, 'jq', '1.6-2.1'), makeDeb(dir, 'gone', '1'), makeDeb(dir, 'liar', '1')]);
    await storeDeb(home, stored.file, stored.deb, 'step');
    const other = await makeDeb(join(dir, 'x'), 'liar', '1', ' (another build)');
    const mirror = await serve(new Map([[`/debian/${poolPath(served.deb)}`, await readFile(served.file)], [`/debian/${poolPath(lying.deb)}`, await readFile(other.file)]]));
    await fetchMissingPins([served.deb, stored.deb, absent.deb, lying.deb], { home, sources: [`deb ${mirror.url}/debian bookworm main`], reporter: quiet, label: 'web' });
    expect(await hasStoredDeb(home, served.deb.sha256)).toBe('mirror');
    expect(await hasStoredDeb(home, absent.deb.sha256)).toBeUndefined();
    expect(await hasStoredDeb(home, lying.deb.sha256)).toBeUndefined();
    expect(mirror.asked.sort()).toEqual([`/debian/${poolPath(absent.deb)}`, `/debian/${poolPath(lying.deb)}`, `/debian/${poolPath(served.deb)}`].sort());
    // Without a recipe's archives nothing is asked for.
    await fetchMissingPins([absent.deb], { home, sources: undefined, reporter: quiet, label: 'web' });
    expect(mirror.asked).toHaveLength(3);
  });
});

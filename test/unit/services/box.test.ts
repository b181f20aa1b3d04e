/** box outdated, update and prune over a real store and a catalog on a local server. */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { installStaged, listBoxes, makeStaging } from '../../../src/box/store.js';
import { run } from '../../../src/exec.js';
import { boxOutdated, boxPrune, boxUpdate, addBox, removeBox } from '../../../src/services/box.js';
import { UserError } from '../../../src/errors.js';
import { downloadPaths, downloadsDir, lockFilePath, machinePaths } from '../../../src/store/layout.js';
import { recordProject } from '../../../src/store/projects.js';
import type { BoxMetadata } from '../../../src/vmfile/box-metadata.js';
import { startFakeHttpServer, type FakeHttpServer } from '../box/fake-http-server.js';
import { tempDir } from '../temp-dir.js';
import { quiet } from '../quiet-reporter.js';

let server: FakeHttpServer;
let home: string;
let boxFile: Buffer;
let published: string[];

beforeEach(async () => {
  server = await startFakeHttpServer();
  home = await tempDir();
  const dir = await tempDir();
  await mkdir(join(dir, 'box'));
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', join(dir, 'box', 'box.img'), '16M']);
  await writeFile(join(dir, 'box', 'metadata.json'), JSON.stringify({ provider: 'libvirt', format: 'qcow2', virtual_size: 1 }));
  await run('tar', ['-cf', join(dir, 'libvirt.box'), '-C', join(dir, 'box'), 'metadata.json', 'box.img']);
  boxFile = await readFile(join(dir, 'libvirt.box'));
  published = ['1.0'];
  // The catalog as it is at the time of each request: tests publish versions by pushing to `published`.
  server.routes.push((req, res) => {
    if (req.url !== '/org/name.json') return false;
    const checksum = createHash('sha256').update(boxFile).digest('hex');
    const versions = published.map((version) => ({ version, providers: [{ name: 'libvirt', url: server.url(`/org/name/${version}.box`), checksum, checksum_type: 'sha256' }] }));
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ name: 'org/name', versions }));
    return true;
  });
  for (const version of ['1.0', '1.1', '2.0']) server.files.set(`/org/name/${version}.box`, { body: boxFile, etag: `"${version}"` });
});

afterEach(async () => server.close());

const network = { retryDelayMs: 0 };

/** A box installed without a catalog, with a small fake disk. */
async function installLocal(name: string, version: string): Promise<void> {
  const staging = await makeStaging(home, `add-${name}`);
  await writeFile(join(staging, 'disk.qcow2'), `disk of ${name} ${version}`);
  const metadata: BoxMetadata = {
    name,
    version,
    architecture: 'x86_64',
    disk: { file: 'disk.qcow2', format: 'qcow2', sha256: 'ab'.repeat(32), virtualSize: 1024 },
    boot: { type: 'firmware', firmware: 'bios' },
    user: 'vm',
    created: '2026-11-10T00:00:00.000Z',
    source: { kind: 'import', file: 'x.qcow2', format: 'qcow2' },
  };
  await installStaged(home, staging, metadata);
}

const installed = async (): Promise<string[]> => (await listBoxes(home)).map((box) => `${box.metadata.name}@${box.metadata.version}`);

describe('box outdated and box update', () => {
  test('a newer version in the catalog is reported, update installs it, and then it is up to date', async () => {
    await addBox({ home, reporter: quiet, name: 'org/name', source: server.url('/org/name.json'), network });
    await installLocal('local', '1');
    expect(await boxOutdated({ home, network })).toEqual([
      { name: 'local', installed: '1', status: 'no catalog' },
      { name: 'org/name', installed: '1.0', status: 'up to date', latest: '1.0', catalog: server.url('/org/name.json') },
    ]);

    published.push('1.1');
    expect(await boxOutdated({ home, names: ['org/name'], network })).toEqual([{ name: 'org/name', installed: '1.0', status: 'outdated', latest: '1.1', catalog: server.url('/org/name.json') }]);

    const updated = await boxUpdate({ home, reporter: quiet, network });
    expect(updated.find((report) => report.name === 'org/name')).toMatchObject({ status: 'outdated', updated: '1.1' });
    expect(await installed()).toEqual(['local@1', 'org/name@1.0', 'org/name@1.1']);
    expect((await boxOutdated({ home, network })).find((report) => report.name === 'org/name')?.status).toBe('up to date');
  });

  test('a catalog whose credentials were redacted is not asked without them, and says how to update', async () => {
    const box = await addBox({ home, reporter: quiet, name: 'org/name', source: server.url('/org/name.json').replace('http://', 'http://robot:secret@'), network });
    expect(box.metadata.source).toMatchObject({ catalog: server.url('/org/name.json').replace('http://', 'http://***@') });
    const requests = server.requests.length;
    const [report] = await boxOutdated({ home, network });
    expect(report).toMatchObject({ name: 'org/name', status: 'failed', error: `box org/name: catalog ${server.url('/org/name.json').replace('http://', 'http://***@')} needs credentials, which vmfile does not keep` });
    expect(server.requests).toHaveLength(requests);
  });

  test('a catalog that cannot be read fails that box only, with the reason', async () => {
    await addBox({ home, reporter: quiet, name: 'org/name', source: server.url('/org/name.json'), network });
    server.routes.unshift((req, res) => {
      if (req.url !== '/org/name.json') return false;
      res.writeHead(500).end();
      return true;
    });
    const [report] = await boxOutdated({ home, network });
    expect(report).toMatchObject({ name: 'org/name', status: 'failed' });
    expect(report?.error).toBe(`box org/name: GET ${server.url('/org/name.json')} answered 500 Internal Server Error`);
  });

  test('a box name that is not installed is a UserError', async () => {
    await expect(boxOutdated({ home, names: ['nope'] })).rejects.toThrow('box nope is not installed');
  });
});

describe('box prune', () => {
  test('removes old versions but keeps the newest and what a Vmfile.lock of an indexed project pins', async () => {
    for (const version of ['1', '2', '3']) await installLocal('debian', version);
    for (const version of ['1.0', '1.1']) await installLocal('org/name', version);
    const project = await tempDir();
    await writeFile(lockFilePath(project), JSON.stringify({ lockVersion: 1, machines: { default: { box: 'debian', version: '1', sha256: 'ab'.repeat(32), source: 'import' } } }));
    await recordProject(home, { project, vmfile: join(project, 'Vmfile.ts') });

    const dry = await boxPrune({ home, dryRun: true });
    expect(dry.remove).toEqual([
      { name: 'debian', version: '2' },
      { name: 'org/name', version: '1.0' },
    ]);
    expect(await installed()).toHaveLength(5);

    const result = await boxPrune({ home, dryRun: false });
    expect(result.remove).toEqual(dry.remove);
    expect(result.keep).toContainEqual({ name: 'debian', version: '1', reasons: [`used by ${lockFilePath(project)} (machine "default")`] });
    expect(await installed()).toEqual(['debian@1', 'debian@3', 'org/name@1.1']);
  });

  test('only the boxes named, and partial downloads nobody works on', async () => {
    for (const version of ['1', '2']) await installLocal('debian', version);
    for (const version of ['1', '2']) await installLocal('alpine', version);
    const paths = downloadPaths(home, 'http://127.0.0.1/left-behind.box');
    await mkdir(downloadsDir(home), { recursive: true });
    await writeFile(paths.partial, 'half a box');

    const result = await boxPrune({ home, dryRun: false, names: ['debian'] });

    expect(result.remove).toEqual([{ name: 'debian', version: '1' }]);
    expect(result.partialDownloads).toEqual({ files: 1, bytes: 10 });
    expect(await installed()).toEqual(['alpine@1', 'alpine@2', 'debian@2']);
    expect(await readdir(downloadsDir(home))).toEqual([]);
  });
});

describe('box remove', () => {
  test('a version a machine was made from is refused, naming the machine; another version goes; --force removes it', async () => {
    for (const version of ['1', '2']) await installLocal('debian', version);
    const project = await tempDir();
    const state = machinePaths(project, 'web').state;
    await mkdir(dirname(state), { recursive: true });
    await writeFile(state, JSON.stringify({ name: 'web', instanceId: 'i', createdAt: '2026-11-28T00:00:00.000Z', box: { name: 'debian', version: '1', sha256: 'ab'.repeat(32) }, user: 'vm' }));
    await recordProject(home, { project, vmfile: join(project, 'Vmfile.ts') });

    const error = await removeBox(home, 'debian').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(UserError);
    expect((error as UserError).message).toBe(`box debian is in use: machine "web" of ${project} (version 1)`);
    expect(await installed()).toEqual(['debian@1', 'debian@2']);

    expect((await removeBox(home, 'debian', '2')).map((box) => box.version)).toEqual(['2']);
    expect((await removeBox(home, 'debian', '1', { force: true })).map((box) => box.version)).toEqual(['1']);
    expect(await installed()).toEqual([]);
  });
});

describe('box add of what a user may type', () => {
  test('a directory instead of a box file is a UserError naming it', async () => {
    const dir = await tempDir();
    const error = await addBox({ home, reporter: quiet, name: 'x', source: dir }).catch((reason: unknown) => reason);
    expect(error).toBeInstanceOf(UserError);
    expect((error as UserError).message).toBe(`box x: ${dir} is a directory, not a box file`);
    expect(await installed()).toEqual([]);
  });

  test('a file that is not there is a UserError naming it', async () => {
    const error = await addBox({ home, reporter: quiet, name: 'x', source: join(home, 'nothing.box') }).catch((reason: unknown) => reason);
    expect(error).toBeInstanceOf(UserError);
    expect((error as UserError).message).toBe(`box x: cannot read ${join(home, 'nothing.box')}: no such file`);
  });

  // URL schemes are case-insensitive (RFC 3986), and vmfile validate accepts one in capitals.
  test('an upper-case HTTP:// or HTTPS:// URL is a URL like any other', async () => {
    const box = await addBox({ home, reporter: quiet, name: 'org/name', source: server.url('/org/name.json').replace('http:', 'HTTP:'), network });
    expect(box.metadata.version).toBe('1.0');
    // This server speaks plain HTTP: TLS to it fails, as a network error naming the URL (exit 1), not a crash.
    const secure = server.url('/org/name.json').replace('http:', 'HTTPS:');
    const error = await addBox({ home, reporter: quiet, name: 'org/name', source: secure, network }).catch((reason: unknown) => reason);
    expect(error).toBeInstanceOf(UserError);
    expect((error as UserError).message).toMatch(new RegExp(`^box org/name: GET ${secure.replaceAll('.', '\\.')} failed: `));
  });
});

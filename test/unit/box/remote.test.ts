/** box add from a URL and through a Vagrant catalog, against a local server, with small real qcow2 images. */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { addBox } from '../../../src/box/import.js';
import { addBoxFromUrl, type RemoteAddOptions } from '../../../src/box/remote.js';
import { listBoxes } from '../../../src/box/store.js';
import { ConfigError, UserError, VmfileError } from '../../../src/errors.js';
import { run } from '../../../src/exec.js';
import { downloadsDir } from '../../../src/store/layout.js';
import { entryFor, formatLockFile } from '../../../src/vmfile/lock.js';
import type { Phase, Reporter } from '../../../src/ui/reporter.js';
import { tempDir } from '../temp-dir.js';
import { startFakeHttpServer, type FakeHttpServer } from './fake-http-server.js';

/** What a reporter was told, as lines. */
function recordingReporter(): Reporter & { lines: string[] } {
  const lines: string[] = [];
  const phase = (machine: string, title: string): Phase => {
    lines.push(`phase ${machine}: ${title}`);
    return { progress: (text) => lines.push(`progress ${text}`), measure: (fraction) => lines.push(`measure ${fraction.toFixed(2)}`), done: () => lines.push('done'), fail: () => lines.push('fail') };
  };
  return { lines, phase, info: (machine, text) => lines.push(`info ${machine}: ${text}`), notice: (text) => lines.push(`notice ${text}`), output: () => undefined };
}

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

let server: FakeHttpServer;
let home: string;
let work: string;
let qcow2: Buffer;
let vagrantBox: Buffer;

beforeEach(async () => {
  server = await startFakeHttpServer();
  home = await tempDir();
  work = await tempDir();
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', join(work, 'disk.qcow2'), '16M']);
  qcow2 = await readFile(join(work, 'disk.qcow2'));
  await mkdir(join(work, 'vagrant'));
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', join(work, 'vagrant', 'box.img'), '32M']);
  await writeFile(join(work, 'vagrant', 'metadata.json'), JSON.stringify({ provider: 'libvirt', format: 'qcow2', virtual_size: 1 }));
  await run('tar', ['-czf', join(work, 'libvirt.box'), '-C', join(work, 'vagrant'), 'metadata.json', 'box.img']);
  vagrantBox = await readFile(join(work, 'libvirt.box'));
});

afterEach(async () => server.close());

function add(extra: Partial<RemoteAddOptions> & Pick<RemoteAddOptions, 'name' | 'url'>): ReturnType<typeof addBoxFromUrl> {
  return addBoxFromUrl({ home, reporter: recordingReporter(), network: { retryDelayMs: 0 }, ...extra });
}

async function failure(promise: Promise<unknown>): Promise<VmfileError> {
  const error: unknown = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  if (!(error instanceof VmfileError)) throw new Error(`expected a VmfileError, got ${String(error)}`);
  return error;
}

const installed = async (): Promise<string[]> => (await listBoxes(home)).map((box) => `${box.metadata.name}@${box.metadata.version}`);

function catalogOf(versions: { version: string; checksum?: string; type?: string; provider?: string }[], name = 'org/name'): string {
  return JSON.stringify({
    name,
    versions: versions.map(({ version, checksum, type, provider }) => ({
      version,
      providers: [{ name: provider ?? 'libvirt', url: server.url(`/org/name/${version}/libvirt.box`), checksum: checksum ?? sha256(vagrantBox), checksum_type: type ?? 'sha256', architecture: 'amd64' }],
    })),
  });
}

describe('a box file URL', () => {
  test('is downloaded, verified, imported, recorded in box.json, and the download removed', async () => {
    server.files.set('/cloud.qcow2', { body: qcow2, etag: '"1"' });
    const reporter = recordingReporter();
    const url = server.url('/cloud.qcow2');

    const box = await addBoxFromUrl({ home, reporter, name: 'cloud', url, checksum: `sha256:${sha256(qcow2)}`, version: '1.0' });

    expect(box.metadata).toMatchObject({ name: 'cloud', version: '1.0', source: { kind: 'import', file: 'cloud.qcow2', format: 'qcow2', url, checksum: `sha256:${sha256(qcow2)}` } });
    expect(JSON.parse(await readFile(box.paths.metadata, 'utf8'))).toEqual(box.metadata);
    expect(reporter.lines).toContain(`phase box cloud: Downloading ${url}`);
    expect(reporter.lines).toContain('measure 1.00');
    // Named as the user knows it, not as the download in progress is.
    expect(reporter.lines).toContain('phase box cloud: Importing the disk cloud.qcow2');
    expect(await readdir(downloadsDir(home))).toEqual([]);
  });

  test('a wrong checksum installs nothing and deletes the download', async () => {
    server.files.set('/cloud.qcow2', { body: qcow2, etag: '"1"' });
    const error = await failure(add({ name: 'cloud', url: server.url('/cloud.qcow2'), checksum: `sha256:${'0'.repeat(64)}` }));

    expect(error.message).toMatch(/^box cloud: checksum mismatch for http:\/\/127\.0\.0\.1:\d+\/cloud\.qcow2: expected sha256:0{64}, got sha256:[0-9a-f]{64}$/);
    expect(await installed()).toEqual([]);
    expect(await readdir(downloadsDir(home))).toEqual([]);
  });

  test('vmup (requireChecksum) refuses a box file without a checksum, before downloading', async () => {
    server.files.set('/cloud.qcow2', { body: qcow2, etag: '"1"' });
    const error = await failure(add({ name: 'cloud', url: server.url('/cloud.qcow2'), requireChecksum: true }));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toBe(`box cloud: ${server.url('/cloud.qcow2')} is a box file, and vmup downloads one only with its checksum`);
    expect(server.requests.filter((request) => request.method === 'GET')).toEqual([]);
  });

  test('box add without a checksum installs it and says it was not verified', async () => {
    server.files.set('/cloud.qcow2', { body: qcow2, etag: '"1"' });
    const reporter = recordingReporter();
    await addBoxFromUrl({ home, reporter, name: 'cloud', url: server.url('/cloud.qcow2') });
    expect(reporter.lines).toContain(`notice box cloud: no checksum given, so the download from ${server.url('/cloud.qcow2')} is not verified (pass --checksum sha256:HEX to verify it)`);
    expect(await installed()).toHaveLength(1);
  });

  test('a URL that is not http(s) is refused', async () => {
    expect((await failure(add({ name: 'cloud', url: 'ftp://127.0.0.1/x.box' }))).message).toBe('box cloud: "ftp://127.0.0.1/x.box" is not a URL vmfile downloads from: expected an http:// or https:// URL, not ftp:');
  });
});

describe('a Vagrant catalog', () => {
  beforeEach(() => {
    for (const version of ['1.0', '1.1', '2.0']) server.files.set(`/org/name/${version}/libvirt.box`, { body: vagrantBox, etag: `"${version}"` });
  });

  test('installs the newest version under the catalog\'s name, recording the catalog', async () => {
    server.files.set('/org/name.json', { body: Buffer.from(catalogOf([{ version: '1.0' }, { version: '1.1' }])) });

    const box = await add({ name: 'org/name', url: server.url('/org/name.json') });

    expect(box.metadata).toMatchObject({
      name: 'org/name',
      version: '1.1',
      disk: { virtualSize: 32 * 1024 ** 2 },
      source: { kind: 'import', file: 'libvirt.box', format: 'vagrant-libvirt', url: server.url('/org/name/1.1/libvirt.box'), catalog: server.url('/org/name.json'), checksum: `sha256:${sha256(vagrantBox)}` },
    });
    expect(box.paths.dir).toBe(join(home, 'boxes', 'org-VAGRANTSLASH-name', '1.1'));
  });

  test('a URL is a catalog when the server calls it JSON, whatever its name', async () => {
    server.files.set('/org/name', { body: Buffer.from(catalogOf([{ version: '1.0' }])), contentType: 'application/json; charset=utf-8' });
    expect((await add({ name: 'org/name', url: server.url('/org/name') })).metadata.version).toBe('1.0');
    expect(server.requests.map((request) => `${request.method} ${request.path}`)).toEqual(['HEAD /org/name', 'GET /org/name', 'GET /org/name/1.0/libvirt.box']);
  });

  test('a server that answers a browser with a web page and Vagrant with JSON (as Vagrant Cloud does) gives its catalog', async () => {
    server.routes.push((req, res) => {
      if (new URL(req.url ?? '/', 'http://x').pathname !== '/org/name') return false;
      const json = (req.headers.accept ?? '').includes('application/json');
      res.writeHead(200, { 'content-type': json ? 'application/json' : 'text/html' });
      res.end(req.method === 'HEAD' ? undefined : json ? catalogOf([{ version: '1.0' }]) : '<html>org/name</html>');
      return true;
    });
    expect((await add({ name: 'org/name', url: server.url('/org/name') })).metadata.version).toBe('1.0');
  });

  test.each([
    ['an exact version', { version: '1.0' }, '1.0'],
    ['constraints', { constraints: [{ operator: '<' as const, version: '2' }] }, '1.1'],
  ])('%s', async (_label, extra, version) => {
    server.files.set('/org/name.json', { body: Buffer.from(catalogOf([{ version: '1.0' }, { version: '1.1' }, { version: '2.0' }])) });
    expect((await add({ name: 'org/name', url: server.url('/org/name.json'), ...extra })).metadata.version).toBe(version);
  });

  test('a sha512 checksum from the catalog is verified', async () => {
    const sha512 = createHash('sha512').update(vagrantBox).digest('hex');
    server.files.set('/org/name.json', { body: Buffer.from(catalogOf([{ version: '1.0', checksum: sha512, type: 'sha512' }])) });
    expect((await add({ name: 'org/name', url: server.url('/org/name.json') })).metadata.source).toMatchObject({ checksum: `sha512:${sha512}` });
  });

  test('a wrong checksum in the catalog installs nothing', async () => {
    server.files.set('/org/name.json', { body: Buffer.from(catalogOf([{ version: '1.0', checksum: 'ab'.repeat(32) }])) });
    expect((await failure(add({ name: 'org/name', url: server.url('/org/name.json') }))).message).toMatch(/^box org\/name: checksum mismatch for /);
    expect(await installed()).toEqual([]);
    expect(await readdir(downloadsDir(home))).toEqual([]);
  });

  test('a catalog for another box is refused, naming the field', async () => {
    server.files.set('/org/name.json', { body: Buffer.from(catalogOf([{ version: '1.0' }], 'other/box')) });
    const error = await failure(add({ name: 'org/name', url: server.url('/org/name.json') }));
    expect(error.message).toBe(`box org/name: catalog ${server.url('/org/name.json')}: name: the catalog is for box "other/box", not "org/name"`);
  });

  test('a checksum of your own does not apply to a catalog', async () => {
    server.files.set('/org/name.json', { body: Buffer.from(catalogOf([{ version: '1.0' }])) });
    const error = await failure(add({ name: 'org/name', url: server.url('/org/name.json'), checksum: `sha256:${'a'.repeat(64)}` }));
    expect(error.message).toMatch(/is a catalog, which gives each version's checksum/);
  });

  test('the chosen version already installed: refused before downloading', async () => {
    server.files.set('/org/name.json', { body: Buffer.from(catalogOf([{ version: '1.0' }])) });
    await add({ name: 'org/name', url: server.url('/org/name.json') });
    const error = await failure(add({ name: 'org/name', url: server.url('/org/name.json') }));
    expect(error.message).toBe('box org/name version 1.0 is already installed');
    expect(server.requests.filter((request) => request.path.endsWith('.box'))).toHaveLength(1);
  });

  test('a hostile catalog: invalid fields are listed with the URL, and nothing is downloaded', async () => {
    server.files.set('/org/name.json', { body: Buffer.from(JSON.stringify({ name: 'org/name', versions: [{ version: '1', providers: [{ name: 'libvirt', url: 'file:///etc/shadow' }] }] })) });
    const error = await failure(add({ name: 'org/name', url: server.url('/org/name.json') }));
    expect(error.message).toBe(`box org/name: catalog ${server.url('/org/name.json')} is invalid:\n  - versions[0].providers[0].url: expected an http:// or https:// URL, not file:`);
  });

  test('a catalog larger than 4 MiB is refused unread', async () => {
    server.files.set('/org/name.json', { body: Buffer.alloc(4 * 1024 * 1024 + 1, 0x20) });
    const error = await failure(add({ name: 'org/name', url: server.url('/org/name.json') }));
    expect(error.message).toBe(`box org/name: ${server.url('/org/name.json')} is larger than 4MiB, too large for a box catalog`);
  });
});

describe('a name vmfile builds from its own recipe', () => {
  // Otherwise a downloaded or imported "debian-12 9999" would be the newest debian-12 for every project on the host.
  test('is never downloaded: refused before anything is asked', async () => {
    server.files.set('/debian-12.json', { body: Buffer.from(catalogOf([{ version: '9999' }], 'debian-12')) });
    const error = await failure(add({ name: 'debian-12', url: server.url('/debian-12.json') }));
    expect(error).toBeInstanceOf(UserError);
    expect(error.message).toBe('box name "debian-12" is the name of a box vmfile builds from its own recipe');
    expect(error.hint).toBe('give this box another name; vmup builds debian-12 itself (or: vmfile box build debian-12)');
    expect(server.requests).toEqual([]);
    expect(await installed()).toEqual([]);
  });

  test('is never imported from a file either', async () => {
    const error = await failure(addBox({ home, name: 'debian-13', file: join(work, 'disk.qcow2'), version: '9999' }));
    expect(error.message).toBe('box name "debian-13" is the name of a box vmfile builds from its own recipe');
    expect(await installed()).toEqual([]);
  });
});

describe('credentials in a URL', () => {
  const SECRET = 's3cr3t-t0ken';
  const withCredentials = (path: string): string => server.url(path).replace('http://', `http://robot:${SECRET}@`);
  /** Serves `files` only to requests that carry robot's credentials; records what each request carried. */
  function requireCredentials(): string[] {
    const seen: string[] = [];
    server.routes.push((req, res) => {
      seen.push(req.headers.authorization ?? '(none)');
      if (req.headers.authorization === `Basic ${Buffer.from(`robot:${SECRET}`).toString('base64')}`) return false;
      res.writeHead(401, { 'www-authenticate': 'Basic' }).end();
      return true;
    });
    return seen;
  }

  test('are used for the requests, and never shown nor written to box.json or Vmfile.lock', async () => {
    const seen = requireCredentials();
    for (const version of ['1.0']) server.files.set(`/org/name/${version}/libvirt.box`, { body: vagrantBox, etag: `"${version}"` });
    server.files.set('/org/name.json', { body: Buffer.from(catalogOf([{ version: '1.0' }]).replaceAll('http://', `http://robot:${SECRET}@`)) });
    const reporter = recordingReporter();

    const box = await addBoxFromUrl({ home, reporter, name: 'org/name', url: withCredentials('/org/name.json'), network: { retryDelayMs: 0 } });

    expect(seen.length).toBeGreaterThan(1);
    expect(seen.every((header) => header.startsWith('Basic '))).toBe(true);
    expect(box.metadata.source).toMatchObject({ url: server.url('/org/name/1.0/libvirt.box').replace('http://', 'http://***@'), catalog: server.url('/org/name.json').replace('http://', 'http://***@') });
    expect(await readFile(box.paths.metadata, 'utf8')).not.toContain(SECRET);
    expect(formatLockFile({ lockVersion: 1, machines: { default: entryFor(box.metadata) } })).not.toContain(SECRET);
    expect(reporter.lines.join('\n')).not.toContain(SECRET);
    expect(reporter.lines).toContain(`phase box org/name: Downloading ${server.url('/org/name/1.0/libvirt.box').replace('http://', 'http://***@')}`);
  });

  test('are never in an error message, nor in the record of a download left to resume', async () => {
    requireCredentials();
    server.files.set('/cloud.qcow2', { body: qcow2, etag: '"1"', cutAfter: 1000, hangUpAfterCuts: true });
    const reporter = recordingReporter();
    const error = await failure(addBoxFromUrl({ home, reporter, name: 'cloud', url: withCredentials('/cloud.qcow2'), network: { retryDelayMs: 0 } }));
    expect(error.message).toContain('http://***@127.0.0.1');
    const missing = await failure(add({ name: 'cloud', url: withCredentials('/nothing.qcow2'), checksum: `sha256:${sha256(qcow2)}` }));
    const wrong = await failure(add({ name: 'cloud', url: `http://robot:${SECRET}@127.0.0.1:1/x.qcow2`, checksum: `sha256:${sha256(qcow2)}` }));
    const invalid = await failure(add({ name: 'cloud', url: `ftp://robot:${SECRET}@127.0.0.1/x.qcow2` }));
    for (const failed of [error, missing, wrong, invalid]) expect(`${failed.message}\n${failed.hint ?? ''}`).not.toContain(SECRET);
    expect(reporter.lines.join('\n')).not.toContain(SECRET);
    const left = await readdir(downloadsDir(home));
    expect(left.length).toBeGreaterThan(0);
    for (const name of left) expect(await readFile(join(downloadsDir(home), name), 'utf8').catch(() => '')).not.toContain(SECRET);
  });
});

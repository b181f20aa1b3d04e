/** vmup's box step with downloads: a Vmfile's url, and a colleague's Vmfile.lock naming where its box came from. */
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { listBoxes } from '../../../src/box/store.js';
import { ConfigError, UserError } from '../../../src/errors.js';
import { run } from '../../../src/exec.js';
import { checkLock, ensureBox } from '../../../src/lifecycle/box.js';
import { readLockFile } from '../../../src/store/lockfile.js';
import type { BoxRef, MachineConfig, Project } from '../../../src/vmfile/config.js';
import { lockedBoxRef } from '../../../src/vmfile/lock.js';
import { startFakeHttpServer, type FakeHttpServer } from '../box/fake-http-server.js';
import { tempDir } from '../temp-dir.js';
import { quiet } from '../quiet-reporter.js';

let server: FakeHttpServer;
let boxFile: Buffer;

beforeEach(async () => {
  server = await startFakeHttpServer();
  const dir = await tempDir();
  await mkdir(join(dir, 'box'));
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', join(dir, 'box', 'box.img'), '16M']);
  await writeFile(join(dir, 'box', 'metadata.json'), JSON.stringify({ provider: 'libvirt', format: 'qcow2', virtual_size: 1 }));
  await run('tar', ['-cf', join(dir, 'libvirt.box'), '-C', join(dir, 'box'), 'metadata.json', 'box.img']);
  boxFile = await readFile(join(dir, 'libvirt.box'));
  const checksum = createHash('sha256').update(boxFile).digest('hex');
  for (const version of ['1.0', '2.0']) server.files.set(`/org/name/${version}.box`, { body: boxFile, etag: `"${version}"` });
  server.files.set('/org/name.json', {
    body: Buffer.from(JSON.stringify({ name: 'org/name', versions: ['1.0', '2.0'].map((version) => ({ version, providers: [{ name: 'libvirt', url: server.url(`/org/name/${version}.box`), checksum, checksum_type: 'sha256' }] })) })),
  });
});

afterEach(async () => server.close());

async function project(box: BoxRef): Promise<{ project: Project; machine: MachineConfig }> {
  const dir = await tempDir();
  const machine = { name: 'default', box } as MachineConfig;
  return { project: { dir, vmfilePath: join(dir, 'Vmfile.ts'), loadedFiles: [join(dir, 'Vmfile.ts')], machines: [machine] }, machine };
}

describe('ensureBox', () => {
  test('a Vmfile with a catalog url: the newest version is downloaded, and the lock records the catalog', async () => {
    const home = await tempDir();
    const { project: p, machine } = await project({ name: 'org/name', url: server.url('/org/name.json') });

    const box = await ensureBox(home, machine.box, { reporter: quiet, machine: 'default' });
    expect(await checkLock(p, machine, box, { update: false })).toBe('written');

    expect(box.metadata.version).toBe('2.0');
    expect((await readLockFile(p.dir)).machines['default']).toMatchObject({ box: 'org/name', version: '2.0', catalog: server.url('/org/name.json'), url: server.url('/org/name/2.0.box') });
    // Found in the store the next time: no more requests.
    const requests = server.requests.length;
    await ensureBox(home, machine.box, { reporter: quiet, machine: 'default' });
    expect(server.requests).toHaveLength(requests);
  });

  test("a colleague's host: the version Vmfile.lock pins is fetched from the Vmfile's catalog and verifies", async () => {
    const here = await tempDir();
    const { project: p, machine } = await project({ name: 'org/name', url: server.url('/org/name.json') });
    const ours = await ensureBox(here, { name: 'org/name', version: '1.0', url: server.url('/org/name.json') }, { reporter: quiet, machine: 'default' });
    await checkLock(p, machine, ours, { update: false });

    const colleague = await tempDir();
    const ref = lockedBoxRef(machine.box, (await readLockFile(p.dir)).machines['default']);
    const theirs = await ensureBox(colleague, ref, { reporter: quiet, machine: 'default', fromLock: ref.fromLock });

    expect(ref).toEqual({ name: 'org/name', version: '1.0', url: server.url('/org/name.json'), fromLock: true });
    expect(theirs.metadata.version).toBe('1.0');
    // The same disk, byte for byte, so the lock verifies on the other host.
    expect(await checkLock(p, machine, theirs, { update: false })).toBe('verified');
  });

  test('a Vmfile.lock edited alone adds no source: a catalog it names for a box the Vmfile gives no url is never asked', async () => {
    const { project: p, machine } = await project({ name: 'org/name' });
    await writeFile(
      join(p.dir, 'Vmfile.lock'),
      JSON.stringify({ lockVersion: 1, machines: { default: { box: 'org/name', version: '2.0', sha256: 'a'.repeat(64), source: 'import', catalog: server.url('/org/name.json') } } }),
    );
    const home = await tempDir();
    const ref = lockedBoxRef(machine.box, (await readLockFile(p.dir)).machines['default']);

    const error = await ensureBox(home, ref, { reporter: quiet, machine: 'default', fromLock: ref.fromLock }).catch((reason: unknown) => reason);

    expect(error).toBeInstanceOf(UserError);
    expect((error as UserError).message).toBe('machine "default": box org/name version 2.0, pinned by Vmfile.lock, is not installed');
    expect(server.requests).toEqual([]);
    expect(await listBoxes(home)).toEqual([]);
  });

  test('a box vmfile builds from its recipe is never downloaded, even from a url in the Vmfile', async () => {
    server.files.set('/debian-12.json', { body: Buffer.from(JSON.stringify({ name: 'debian-12', versions: [{ version: '9999', providers: [{ name: 'libvirt', url: server.url('/org/name/1.0.box'), checksum: createHash('sha256').update(boxFile).digest('hex'), checksum_type: 'sha256' }] }] })) });
    const home = await tempDir();

    const error = await ensureBox(home, { name: 'debian-12', url: server.url('/debian-12.json') }, { reporter: quiet, machine: 'web' }).catch((reason: unknown) => reason);

    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toBe('machine "web": box debian-12 is built here from vmfile\'s own recipe, so it is never downloaded (the Vmfile gives it a url)');
    expect(server.requests).toEqual([]);
    expect(await listBoxes(home)).toEqual([]);
  });

  test('a Vmfile box file url without a checksum is a configuration error, and nothing is downloaded', async () => {
    const home = await tempDir();
    const error = await ensureBox(home, { name: 'plain', url: server.url('/org/name/1.0.box') }, { reporter: quiet, machine: 'default' }).catch((reason: unknown) => reason);
    expect(error).toBeInstanceOf(ConfigError);
    expect(server.requests.filter((request) => request.method === 'GET')).toEqual([]);
    expect(await listBoxes(home)).toEqual([]);
  });

  test('a range no installed version meets, and no url: says what is installed', async () => {
    const home = await tempDir();
    await ensureBox(home, { name: 'org/name', version: '1.0', url: server.url('/org/name.json') }, { reporter: quiet, machine: 'web' });
    const error = await ensureBox(home, { name: 'org/name', constraints: [{ operator: '>=', version: '2' }] }, { reporter: quiet, machine: 'web' }).catch((reason: unknown) => reason);
    expect(error).toBeInstanceOf(UserError);
    expect((error as UserError).message).toBe('machine "web": no installed version of box org/name meets >= 2 (installed: 1.0)');
  });

  test('a range with a catalog url: the newest published version in range', async () => {
    const home = await tempDir();
    const box = await ensureBox(home, { name: 'org/name', constraints: [{ operator: '<', version: '2' }], url: server.url('/org/name.json') }, { reporter: quiet, machine: 'web' });
    expect(box.metadata.version).toBe('1.0');
  });
});

/**
 * Boxes from the network through the built CLI, without booting anything: a local HTTP
 * server on 127.0.0.1 (started here) serves small qcow2 images, Vagrant libvirt boxes, a
 * vmfile box file and a catalog that gains versions as the test goes. What a user would
 * check: the progress shown, what the box list says, what the server was asked for, and
 * what Vmfile.lock records.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeHttpServer, type FakeHttpServer } from '../unit/box/fake-http-server.js';
import { cli, explain, makeProject, type CliOptions } from './cli.js';

interface ListedBox {
  name: string;
  version: string;
  source: { kind: string; url?: string; catalog?: string; checksum?: string };
}

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

describe('box downloads and catalogs', () => {
  let work: string;
  let home: string;
  let server: FakeHttpServer;
  let plain: Buffer;
  /** A project whose Vmfile.lock pins org/name 1.0 (written by vmfile lock --update below). */
  let project = '';
  /** Catalog versions as served now: each maps to its box file and provider. */
  const published: { version: string; provider: 'libvirt' | 'vmfile'; file: Buffer }[] = [];
  const boxes = new Map<string, Buffer>();

  const vmfile = (args: string[], options: Partial<CliOptions> = {}) => cli('vmfile', args, { cwd: work, env: { VMFILE_HOME: home }, timeoutMs: 120_000, ...options });
  const list = async (): Promise<ListedBox[]> => {
    const result = await vmfile(['box', 'list', '--json']);
    expect(result.code, explain(result)).toBe(0);
    return JSON.parse(result.stdout) as ListedBox[];
  };
  const versionsOf = async (name: string): Promise<string[]> => (await list()).filter((box) => box.name === name).map((box) => box.version);
  const gets = (path: string) => server.requests.filter((request) => request.method === 'GET' && request.path === path);

  /** A Vagrant libvirt box: a tar of metadata.json and a qcow2 box.img. */
  async function libvirtBox(size: string): Promise<Buffer> {
    const dir = await mkdtemp(join(work, 'libvirt-'));
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', join(dir, 'box.img'), size]);
    await writeFile(join(dir, 'metadata.json'), JSON.stringify({ provider: 'libvirt', format: 'qcow2', virtual_size: 1 }));
    execFileSync('tar', ['-czf', join(dir, 'x.box'), '-C', dir, 'metadata.json', 'box.img']);
    return readFile(join(dir, 'x.box'));
  }

  /** A vmfile box file, as vmfile package writes one: box.json first, then the disk. */
  async function vmfileBox(size: string): Promise<Buffer> {
    const dir = await mkdtemp(join(work, 'vmfile-'));
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', join(dir, 'disk.qcow2'), size]);
    const disk = await readFile(join(dir, 'disk.qcow2'));
    const metadata = {
      name: 'published',
      version: '3.0',
      architecture: 'x86_64',
      disk: { file: 'disk.qcow2', format: 'qcow2', sha256: sha256(disk), virtualSize: 1 },
      boot: { type: 'firmware', firmware: 'bios' },
      user: 'vm',
      created: '2026-11-28T00:00:00.000Z',
      source: { kind: 'package', machine: 'default', fromBox: 'debian-12 2026.11.1' },
    };
    await writeFile(join(dir, 'box.json'), JSON.stringify(metadata));
    execFileSync('tar', ['-cf', join(dir, 'x.box'), '-C', dir, 'box.json', 'disk.qcow2']);
    return readFile(join(dir, 'x.box'));
  }

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'vmfile-download-'));
    home = join(work, 'home');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', join(work, 'plain.qcow2'), '16M']);
    plain = await readFile(join(work, 'plain.qcow2'));
    server = await startFakeHttpServer();
    boxes.set('1.0', await libvirtBox('16M'));
    boxes.set('2.0', await libvirtBox('24M'));
    boxes.set('3.0', await vmfileBox('32M'));
    for (const [version, file] of boxes) server.files.set(`/org/name/${version}.box`, { body: file, etag: `"${version}"` });
    published.push({ version: '1.0', provider: 'libvirt', file: boxes.get('1.0') ?? Buffer.alloc(0) });
    // Served as JSON under a name without .json: found to be a catalog by its Content-Type.
    server.routes.push((req, res) => {
      if (req.url !== '/org/name') return false;
      const versions = published.map(({ version, provider, file }) => ({
        version,
        status: 'active',
        providers: [{ name: provider, url: server.url(`/org/name/${version}.box`), checksum: sha256(file), checksum_type: 'sha256', architecture: 'amd64', default_architecture: true }],
      }));
      res.writeHead(200, { 'content-type': 'application/json' }).end(req.method === 'HEAD' ? undefined : JSON.stringify({ name: 'org/name', description: 'a test box', versions }));
      return true;
    });
  });

  afterAll(async () => {
    await server?.close();
    await rm(work, { recursive: true, force: true });
    if (project !== '') await rm(project, { recursive: true, force: true });
  });

  it('a wrong checksum installs nothing and leaves no download behind', async () => {
    server.files.set('/plain.qcow2', { body: plain, etag: '"p"' });
    const result = await vmfile(['box', 'add', 'plain', server.url('/plain.qcow2'), '--checksum', `sha256:${'0'.repeat(64)}`]);
    expect(result.code, explain(result)).toBe(1);
    expect(result.stderr).toContain(`error: box plain: checksum mismatch for ${server.url('/plain.qcow2')}: expected sha256:${'0'.repeat(64)}, got sha256:${sha256(plain)}`);
    expect(result.stderr).toContain('hint: the download was deleted and nothing was installed');
    expect(await list()).toEqual([]);
    expect(await readdir(join(home, 'downloads'))).toEqual([]);
  });

  it('shows its progress, and a transfer cut halfway resumes with a Range request', async () => {
    server.files.set('/cut.qcow2', { body: plain, etag: '"c"', cutAfter: Math.floor(plain.length / 2) });
    const result = await vmfile(['box', 'add', 'cut', server.url('/cut.qcow2'), '--checksum', `sha256:${sha256(plain)}`, '--version', '1']);
    expect(result.code, explain(result)).toBe(0);
    // Not a terminal: one plain line per tenth of the way, with bytes.
    expect(result.stderr).toContain(`==> box cut: Downloading ${server.url('/cut.qcow2')}...`);
    expect(result.stderr).toMatch(/ {4}box cut: \[#+\.*\] +\d+%, [\d.]+KiB of [\d.]+KiB/);
    expect(result.stderr).toMatch(/ {4}box cut: \[#{24}\] 100%/);
    expect(result.stderr).toMatch(/the download broke off \(connection reset\); resuming from [\d.]+KiB/);
    const [first, second] = gets('/cut.qcow2');
    expect(first?.range).toBeUndefined();
    expect(second?.range).toMatch(/^bytes=[1-9]\d*-$/);
    expect(second?.status).toBe(206);
    expect(server.bytesSent('/cut.qcow2')).toBeLessThan(2 * plain.length);
    expect(await versionsOf('cut')).toEqual(['1']);
  });

  it('Ctrl-C leaves the partial download, and the next run asks only for the rest', async () => {
    const half = Math.floor(plain.length / 2);
    server.files.set('/slow.qcow2', { body: plain, lastModified: 'Sat, 28 Nov 2026 10:00:00 GMT', hangAfter: half });
    const url = server.url('/slow.qcow2');
    const args = ['box', 'add', 'slow', url, '--checksum', `sha256:${sha256(plain)}`, '--version', '1'];
    let interrupted = false;
    const stopped = await vmfile(args, {
      onOutput: (output, child) => {
        // Half the file came, then the server went quiet: the bar stands at 40-50%.
        if (!interrupted && /box slow: \[#+\.*\] +[45]0%/.test(output)) {
          interrupted = true;
          process.kill(-(child.pid ?? 0), 'SIGINT');
        }
      },
    });
    expect(interrupted, explain(stopped)).toBe(true);
    expect(stopped.code, explain(stopped)).toBe(130);
    expect(await versionsOf('slow')).toEqual([]);

    const resumed = await vmfile(args);
    expect(resumed.code, explain(resumed)).toBe(0);
    expect(resumed.stderr).toMatch(/resuming the download from [\d.]+KiB of [\d.]+KiB/);
    expect(gets('/slow.qcow2').at(-1)).toMatchObject({ range: `bytes=${half}-`, ifRange: 'Sat, 28 Nov 2026 10:00:00 GMT', status: 206 });
    expect(server.bytesSent('/slow.qcow2')).toBe(plain.length);
    expect(await versionsOf('slow')).toEqual(['1']);
  });

  it('a Vagrant catalog resolves org/name, stored under -VAGRANTSLASH-', async () => {
    const result = await vmfile(['box', 'add', 'org/name', server.url('/org/name')]);
    expect(result.code, explain(result)).toBe(0);
    expect(result.stdout).toMatch(/^added box org\/name 1\.0 \(sha256:[0-9a-f]{64}\)$/m);
    const [box] = (await list()).filter((entry) => entry.name === 'org/name');
    expect(box).toMatchObject({ version: '1.0', source: { kind: 'import', format: 'vagrant-libvirt', url: server.url('/org/name/1.0.box'), catalog: server.url('/org/name') } });
    expect(await readdir(join(home, 'boxes'))).toContain('org-VAGRANTSLASH-name');
  });

  it('vmfile lock --update pins the catalog version in Vmfile.lock, with where it came from', async () => {
    project = await makeProject(`import { defineVm } from 'vmfile';
export default defineVm({ box: { name: 'org/name', url: '${server.url('/org/name')}' }, memory: '512MiB', folders: [] });
`);
    const result = await cli('vmfile', ['lock', '--update'], { cwd: project, env: { VMFILE_HOME: home } });
    expect(result.code, explain(result)).toBe(0);
    const lock = JSON.parse(await readFile(join(project, 'Vmfile.lock'), 'utf8')) as { lockVersion: number; machines: Record<string, Record<string, unknown>> };
    expect(lock.lockVersion).toBe(1);
    expect(lock.machines['default']).toMatchObject({ box: 'org/name', version: '1.0', source: 'import', url: server.url('/org/name/1.0.box'), catalog: server.url('/org/name') });
  });

  it('box outdated reports the newer version once the catalog has one', async () => {
    const before = await vmfile(['box', 'outdated', '--json']);
    expect(before.code, explain(before)).toBe(0);
    expect(JSON.parse(before.stdout)).toContainEqual({ name: 'org/name', installed: '1.0', status: 'up to date', latest: '1.0', catalog: server.url('/org/name') });

    published.push({ version: '2.0', provider: 'libvirt', file: boxes.get('2.0') ?? Buffer.alloc(0) });
    const after = await vmfile(['box', 'outdated', '--json']);
    expect(after.code, explain(after)).toBe(0);
    const reports = JSON.parse(after.stdout) as { name: string; status: string }[];
    expect(reports).toContainEqual({ name: 'org/name', installed: '1.0', status: 'outdated', latest: '2.0', catalog: server.url('/org/name') });
    expect(reports).toContainEqual({ name: 'cut', installed: '1', status: 'no catalog' });
    const text = await vmfile(['box', 'outdated', 'org/name']);
    expect(text.stdout).toMatch(/^org\/name\s+1\.0\s+outdated\s+2\.0 is available \(vmfile box update org\/name\)$/m);
  });

  it('box update installs the newest version and leaves the others and the lock alone', async () => {
    const result = await vmfile(['box', 'update']);
    expect(result.code, explain(result)).toBe(0);
    expect(result.stdout).toContain('updated box org/name: 1.0 -> 2.0');
    expect(await versionsOf('org/name')).toEqual(['1.0', '2.0']);
    const lock = JSON.parse(await readFile(join(project, 'Vmfile.lock'), 'utf8')) as { machines: Record<string, { version: string }> };
    expect(lock.machines['default']?.version).toBe('1.0');

    // Then a vmfile box file (provider "vmfile") is published as 3.0.
    published.push({ version: '3.0', provider: 'vmfile', file: boxes.get('3.0') ?? Buffer.alloc(0) });
    const again = await vmfile(['box', 'update', 'org/name']);
    expect(again.code, explain(again)).toBe(0);
    expect(await versionsOf('org/name')).toEqual(['1.0', '2.0', '3.0']);
    expect((await list()).find((box) => box.version === '3.0')?.source).toMatchObject({ kind: 'package', catalog: server.url('/org/name') });
  });

  it('box prune removes the old version but keeps the one the Vmfile.lock pins, and the newest', async () => {
    const dry = await vmfile(['box', 'prune', '--dry-run', '--json']);
    expect(dry.code, explain(dry)).toBe(0);
    const plan = JSON.parse(dry.stdout) as { remove: { name: string; version: string }[]; keep: { name: string; version: string; reasons: string[] }[] };
    expect(plan.remove).toEqual([{ name: 'org/name', version: '2.0' }]);
    expect(plan.keep.find((box) => box.name === 'org/name' && box.version === '1.0')?.reasons.join()).toMatch(/^used by .*\/Vmfile\.lock \(machine "default"\)$/);
    expect(plan.keep.find((box) => box.name === 'org/name' && box.version === '3.0')?.reasons).toEqual(['newest']);
    expect(await versionsOf('org/name')).toEqual(['1.0', '2.0', '3.0']);

    const result = await vmfile(['box', 'prune']);
    expect(result.code, explain(result)).toBe(0);
    expect(result.stdout).toContain('removed box org/name 2.0');
    expect(await versionsOf('org/name')).toEqual(['1.0', '3.0']);
    expect((await list()).map((box) => `${box.name}@${box.version}`).sort()).toEqual(['cut@1', 'org/name@1.0', 'org/name@3.0', 'slow@1']);
  });

  it('box add names a missing page and the box, and leaves the store as it was', async () => {
    const result = await vmfile(['box', 'add', 'missing', server.url('/nothing-here.box'), '--checksum', `sha256:${'1'.repeat(64)}`]);
    expect(result.code, explain(result)).toBe(1);
    expect(result.stderr).toContain(`error: box missing: HEAD ${server.url('/nothing-here.box')} answered 404 Not Found`);
    await mkdir(join(home, 'downloads'), { recursive: true });
    expect(await readdir(join(home, 'downloads'))).toEqual([]);
  });
});

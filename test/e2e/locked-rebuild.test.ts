/**
 * The exact package set, pinned and rebuilt, through the built CLI:
 * - `vmfile lock --update` on the test store (whose debian-12 box global-setup built)
 *   lists every package with its sha256, and each is in the package store.
 * - `vmfile lock export`, then, on another "host" (a network namespace with only
 *   loopback, VMFILE_HOME on a tmpfs, umask 077, another time zone, locale and host
 *   name), `vmfile lock import` and vmup: the box is rebuilt offline and matches the
 *   lock bit for bit, and the machine boots.
 * - The mirror has moved on: in that namespace deb.debian.org resolves to a server on
 *   127.0.0.1 that has only newer versions of some locked packages, and those (and one
 *   whose stored file had a byte changed) are missing from the store. vmup asks the
 *   mirror for the locked files only, never takes the newer ones, and gets the locked
 *   files from the snapshot source. This machine cannot reach snapshot.debian.org, so
 *   a local server stands in for it with snapshot-shaped URLs
 *   (/archive/debian/<build time>/pool/...), given as VMFILE_SNAPSHOT_MIRROR.
 * - A package that no source has stops the rebuild with the list and every place tried,
 *   installing and staging nothing; a bundle with one byte changed is refused and named.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { cli, cliOk, explain, makeProject, type CliOptions } from './cli.js';

const exec = promisify(execFile);

interface LockedDeb {
  name: string;
  version: string;
  architecture: string;
  source?: string;
  priority?: string;
  sha256: string;
}

interface LockJson {
  machines: Record<string, { box: string; version: string; sha256: string; kernelSha256: string; initrdSha256: string; recipe: { built: string; packages: LockedDeb[] } }>;
}

/** Where a Debian archive keeps a package (the rule vmfile's box/debs.ts follows, written out again here on purpose). */
function poolPath(deb: Pick<LockedDeb, 'name' | 'version' | 'architecture' | 'source'>): string {
  const source = deb.source ?? deb.name;
  const prefix = source.startsWith('lib') ? source.slice(0, 4) : source.slice(0, 1);
  return `pool/main/${prefix}/${source}/${deb.name}_${deb.version.replace(/^\d+:/, '')}_${deb.architecture}.deb`;
}

const SERVER = `
const http = require('node:http'); const fs = require('node:fs'); const path = require('node:path');
const [port, root, log] = process.argv.slice(1);
http.createServer((req, res) => {
  const file = path.join(root, decodeURIComponent(new URL(req.url, 'http://x').pathname));
  const ok = file.startsWith(root + '/') && fs.existsSync(file) && fs.statSync(file).isFile();
  fs.appendFileSync(log, (ok ? 200 : 404) + ' ' + req.url + '\\n');
  if (!ok) { res.writeHead(404).end(); return; }
  res.writeHead(200, { 'content-length': fs.statSync(file).size });
  fs.createReadStream(file).pipe(res);
}).listen(Number(port), '127.0.0.1', () => fs.appendFileSync(log, 'listening\\n'));
`;

const VMFILE = `import { defineVm } from 'vmfile';
export default defineVm({ box: 'debian-12', cpus: 2, memory: '1GiB', disk: '4GiB', warmStart: false, folders: [] });
`;

async function sha256(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

async function flipLastByte(path: string): Promise<void> {
  const bytes = await readFile(path);
  bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 0xff;
  await writeFile(path, bytes);
}

describe('a locked box rebuilt from exactly its packages', () => {
  const shared = inject('vmfileHome');
  let work: string;
  let project: string;
  let lock: LockJson['machines'][string];
  let bundle: string;
  const netns = `vmfile-e2e-lock-${process.pid}`;
  let tmpfs: string;
  const servers: ChildProcess[] = [];
  /** The packages the moved-on mirror has newer versions of, and that the other host's store lacks. */
  let moved: LockedDeb[];
  /** A package whose stored file gets a byte changed. */
  let tampered: LockedDeb;
  let snapshotRoot: string;
  let mirrorLog: string;
  let snapshotLog: string;

  const inNs = (extra: Record<string, string>, home: string): CliOptions => ({
    cwd: project,
    netns,
    env: { VMFILE_HOME: home, VMFILE_SNAPSHOT_MIRROR: 'http://127.0.0.1:8080', TZ: 'Pacific/Chatham', LANG: 'C', LC_ALL: 'C', ...extra },
    // Another host name, and a umask that would make private files of everything written.
    wrap: ['unshare', '--uts', 'sh', '-c', 'hostname other-host && umask 077 && exec "$@"', 'sh'],
    timeoutMs: 1_200_000,
  });

  async function startServer(port: number, root: string, log: string): Promise<void> {
    await writeFile(log, '');
    const child = spawn('ip', ['netns', 'exec', netns, process.execPath, '-e', SERVER, String(port), root, log], { stdio: 'ignore' });
    servers.push(child);
    for (let i = 0; i < 100 && !(await readFile(log, 'utf8')).includes('listening'); i++) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await readFile(log, 'utf8')).toContain('listening');
  }

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'vmfile-e2e-locked-'));
    project = await makeProject(VMFILE);
    await exec('ip', ['netns', 'add', netns]);
    await exec('ip', ['netns', 'exec', netns, 'ip', 'link', 'set', 'lo', 'up']);
    // ip netns exec puts /etc/netns/NAME/hosts over /etc/hosts: Debian's mirror is a server on 127.0.0.1 there.
    await mkdir(`/etc/netns/${netns}`, { recursive: true });
    await writeFile(`/etc/netns/${netns}/hosts`, '127.0.0.1 localhost deb.debian.org\n');
    tmpfs = join(work, 'tmpfs');
    await mkdir(tmpfs);
    await exec('mount', ['-t', 'tmpfs', '-o', 'size=12g,mode=0700', 'tmpfs', tmpfs]);
  });

  afterAll(async () => {
    await cli('vmfile', ['destroy', '-f'], inNs({}, join(tmpfs, 'offline'))).catch(() => undefined);
    for (const server of servers) server.kill('SIGKILL');
    await exec('umount', [tmpfs]).catch(() => undefined);
    await exec('ip', ['netns', 'del', netns]).catch(() => undefined);
    await rm(`/etc/netns/${netns}`, { recursive: true, force: true });
    await rm(project, { recursive: true, force: true });
    await rm(work, { recursive: true, force: true });
  });

  it('Vmfile.lock lists every package of the box with its sha256, and each is in the package store', async () => {
    await cliOk('vmfile', ['lock', '--update'], { cwd: project, env: { VMFILE_HOME: shared } });
    lock = (JSON.parse(await readFile(join(project, 'Vmfile.lock'), 'utf8')) as LockJson).machines['default'] ?? expect.fail('no lock entry');
    const boxes = join(shared, 'boxes', 'debian-12', lock.version);
    const box = JSON.parse(await readFile(join(boxes, 'box.json'), 'utf8')) as { source: { packages: string[] } };
    const packages = lock.recipe.packages;
    expect(packages.length).toBeGreaterThan(150);
    // Every installed package, each once, with a digest that is the stored file's.
    expect(packages.map((deb) => `${deb.name} ${deb.version}`).sort()).toEqual([...box.source.packages].sort());
    for (const deb of packages) expect(deb.sha256).toMatch(/^[0-9a-f]{64}$/);
    for (const deb of packages.filter((_, index) => index % 40 === 0)) expect(await sha256(join(shared, 'debs', `${deb.sha256}.deb`))).toBe(deb.sha256);
    // apt is "important" in its own control file and "required" in the archive: the lock keeps the archive's.
    expect(packages.find((deb) => deb.name === 'apt')?.priority).toBe('required');
    const shown = JSON.parse((await cliOk('vmfile', ['lock', '--json'], { cwd: project, env: { VMFILE_HOME: shared } })).stdout) as { packages: { pinned: number; missing: number } }[];
    expect(shown[0]?.packages).toMatchObject({ pinned: packages.length, missing: 0 });
  });

  it('export, then import on another host with no network: vmup rebuilds the box bit for bit on a tmpfs with another umask, time zone and host name, taking the packages the store lacks from the snapshot source, never the mirror newer ones; the machine boots', async () => {
    bundle = join(work, 'packages.tar');
    const exported = JSON.parse((await cliOk('vmfile', ['lock', 'export', '--output', bundle, '--json'], { cwd: project, env: { VMFILE_HOME: shared } })).stdout) as { packages: number };
    expect(exported.packages).toBe(lock.recipe.packages.length);

    // The moved-on mirror: newer versions of three locked packages at their own pool paths.
    const byName = (name: string) => lock.recipe.packages.find((deb) => deb.name === name) ?? expect.fail(`${name} is not locked`);
    moved = [byName('sudo'), byName('libcap2'), byName('rsync')];
    tampered = byName('netbase');
    const mirrorRoot = join(work, 'mirror');
    for (const deb of moved) {
      const newer = join(mirrorRoot, 'debian', poolPath({ ...deb, version: `${deb.version}+moved1` }));
      await mkdir(dirname(newer), { recursive: true });
      await writeFile(newer, `not the locked ${deb.name}\n`);
    }
    // The snapshot source: the locked files of those, and of the tampered one, at the build's time.
    snapshotRoot = join(work, 'snapshot');
    const stamp = new Date(lock.recipe.built).toISOString().replace(/\.\d+Z$/, 'Z').replace(/[-:]/g, '');
    for (const deb of [...moved, tampered]) {
      const file = join(snapshotRoot, 'archive', 'debian', stamp, poolPath(deb));
      await mkdir(dirname(file), { recursive: true });
      await copyFile(join(shared, 'debs', `${deb.sha256}.deb`), file);
    }
    mirrorLog = join(work, 'mirror.log');
    snapshotLog = join(work, 'snapshot.log');
    await startServer(80, mirrorRoot, mirrorLog);
    await startServer(8080, snapshotRoot, snapshotLog);

    const home = join(tmpfs, 'offline');
    const options = inNs({}, home);
    const imported = JSON.parse((await cliOk('vmfile', ['lock', 'import', bundle, '--json'], options)).stdout) as { packages: number; added: number };
    expect(imported).toMatchObject({ packages: lock.recipe.packages.length, added: lock.recipe.packages.length });
    for (const deb of moved) await rm(join(home, 'debs', `${deb.sha256}.deb`));
    await flipLastByte(join(home, 'debs', `${tampered.sha256}.deb`));

    // Not installed here is no mismatch: vmfile lock says what vmup will do, and exits 0.
    const before = await cliOk('vmfile', ['lock'], options);
    expect(before.stdout).toContain(`is not installed here; vmup rebuilds it from the ${lock.recipe.packages.length} pinned packages`);
    const up = await cliOk('vmup', [], options);
    expect(up.stderr).toContain(`rebuilding it from the ${lock.recipe.packages.length} packages the lock names`);
    expect(up.stderr).toContain('Fetching 4 locked packages the store does not have');
    expect(up.stderr).toContain(`refused ${tampered.name} ${tampered.version} ${tampered.architecture}: the stored file`);
    const rebuilt = JSON.parse(await readFile(join(home, 'boxes', 'debian-12', lock.version, 'box.json'), 'utf8')) as { disk: { sha256: string }; boot: { kernelSha256: string; initrdSha256: string } };
    expect(rebuilt.disk.sha256).toBe(lock.sha256);
    expect(await sha256(join(home, 'boxes', 'debian-12', lock.version, 'disk.qcow2'))).toBe(lock.sha256);
    expect([rebuilt.boot.kernelSha256, rebuilt.boot.initrdSha256]).toEqual([lock.kernelSha256, lock.initrdSha256]);
    // The mirror was asked for the locked files only (it had none of them), never for the newer ones.
    const asked = (await readFile(mirrorLog, 'utf8')).split('\n').filter((line) => line.startsWith('2') || line.startsWith('4'));
    for (const deb of moved) expect(asked).toContain(`404 /debian/${poolPath(deb)}`);
    expect(asked.filter((line) => line.includes('+moved1'))).toEqual([]);
    expect((await readFile(snapshotLog, 'utf8')).split('\n').filter((line) => line.startsWith('200 '))).toHaveLength(4);
    const ssh = await cliOk('vmssh', ['-c', 'cat /etc/debian_version; dpkg-query -W -f "\\${Version}" sudo'], options);
    expect(ssh.stdout).toMatch(/^12\.\d+\n/);
    expect(ssh.stdout.trim().split('\n').at(-1)).toBe(moved[0]?.version);
    // Where each package is now: three came from the snapshot source, the tampered one too.
    const shown = JSON.parse((await cliOk('vmfile', ['lock', '--json'], options)).stdout) as { status: string; packages: { stored: Record<string, number>; missing: number } }[];
    expect(shown[0]).toMatchObject({ status: 'verified', packages: { missing: 0, stored: { import: lock.recipe.packages.length - 4, snapshot: 4 } } });
    await cliOk('vmhalt', [], options);
  });

  it('a package that no source has stops the rebuild with the list and every place tried; nothing is installed or left staged', async () => {
    const home = join(tmpfs, 'missing');
    // A project of its own: the first one's machine exists now, and keeps its box.
    const other = await makeProject(VMFILE);
    await copyFile(join(project, 'Vmfile.lock'), join(other, 'Vmfile.lock'));
    const options = { ...inNs({}, home), cwd: other };
    await cliOk('vmfile', ['lock', 'import', bundle], options);
    const gone = lock.recipe.packages.filter((deb) => deb.name === 'dash' || deb.name === 'udev');
    expect(gone).toHaveLength(2);
    for (const deb of gone) await rm(join(home, 'debs', `${deb.sha256}.deb`));
    const up = await cli('vmup', [], options);
    expect(up.code, explain(up)).toBe(1);
    for (const deb of gone) expect(up.stderr).toContain(`${deb.name} ${deb.version} ${deb.architecture} (sha256 ${deb.sha256})`);
    expect(up.stderr).toContain('2 locked packages are in none of the places tried');
    expect(up.stderr).toMatch(/tried: the package store; http:\/\/deb\.debian\.org\/debian; http:\/\/deb\.debian\.org\/debian-security; http:\/\/127\.0\.0\.1:8080\/archive\/debian\/\d{8}T\d{6}Z; /);
    expect(up.stderr).toContain('vmfile lock import');
    expect(await readdir(join(home, 'boxes')).catch(() => [])).toEqual([]);
    expect(await readdir(join(home, 'tmp')).catch(() => [])).toEqual([]);
    await rm(other, { recursive: true, force: true });
  });

  it('a bundle with one byte changed in a package is refused, the package named, and nothing is added', async () => {
    const bad = join(work, 'tampered.tar');
    await copyFile(bundle, bad);
    // The last member's data ends before the tar's two zero blocks and its padding: change a byte inside it.
    const tar = await readFile(bad);
    const last = lock.recipe.packages.map((deb) => deb.sha256).sort().at(-1) ?? '';
    const header = tar.indexOf(Buffer.from(`${last}.deb`));
    expect(header).toBeGreaterThan(0);
    tar[header + 512 + 100] = (tar[header + 512 + 100] ?? 0) ^ 0xff;
    await writeFile(bad, tar);
    const home = join(tmpfs, 'tampered');
    const result = await cli('vmfile', ['lock', 'import', bad], inNs({}, home));
    expect(result.code, explain(result)).toBe(1);
    const deb = lock.recipe.packages.find((entry) => entry.sha256 === last) ?? expect.fail('no such package');
    expect(result.stderr).toContain(`${deb.name} ${deb.version} ${deb.architecture}: ${last}.deb hashes to`);
    expect(result.stderr).toContain('Nothing was added to the package store.');
    expect(await readdir(join(home, 'debs')).catch(() => [])).toEqual([]);
  });
});

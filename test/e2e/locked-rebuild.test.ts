/**
 * The exact package set, pinned and rebuilt, and a study replayed from one file, through
 * the built CLI:
 * - vmup of a study on the test store (whose debian-12 box global-setup built): a step
 *   installs hello from Debian's mirror (through a provisioning layer made on the way),
 *   another (a script) writes two outputs, one a hash of the installed binary, one of a
 *   project file. Vmfile.lock lists every package of the box and the step's with its
 *   sha256, each in the package store, and both outputs; the SBOM in both formats passes
 *   its schema and names hello as the step's.
 * - `vmfile bundle`, then, on another "host" (a network namespace with only loopback,
 *   VMFILE_HOME a fresh tmpfs, umask 077, another time zone, locale and host name),
 *   `vmfile reproduce`: the box is rebuilt offline and matches the lock bit for bit, the
 *   step installs the locked hello from the pinned source (the guest lists exactly what
 *   the study's did, and fetched no index from any mirror), and every output matches.
 * - The mirror has moved on: in that namespace deb.debian.org resolves to a server on
 *   127.0.0.1 that has only newer versions of some locked packages, and the bundle
 *   replayed lacks those. The rebuild asks the mirror for the locked files only, never
 *   takes the newer ones, and gets the locked files from the snapshot source. This machine
 *   cannot reach snapshot.debian.org, so a local server stands in for it with
 *   snapshot-shaped URLs (/archive/debian/<build time>/pool/...), given as
 *   VMFILE_SNAPSHOT_MIRROR.
 * - The same bundle with its analysis script changed reports the output that differs,
 *   exits non-zero and leaves no machine.
 * - A package that no source has stops the rebuild with the list and every place tried,
 *   installing and staging nothing (a stored file with a byte changed is refused and
 *   fetched again on the way); a package bundle with one byte changed is refused and named.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { cyclonedxValidator, spdxValidator } from '../fixtures/schemas/validate.js';
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
  machines: Record<
    string,
    {
      box: string;
      version: string;
      sha256: string;
      kernelSha256: string;
      initrdSha256: string;
      recipe: { built: string; packages: LockedDeb[] };
      steps?: Record<string, { packages: LockedDeb[] }>;
      outputs?: Record<string, Record<string, string>>;
    }
  >;
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
export default defineVm({
  box: 'debian-12', cpus: 2, memory: '1GiB', disk: '4GiB', warmStart: false,
  provision: [
    { name: 'install hello', shell: 'apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q hello # run ${randomUUID()}' },
    { name: 'analyse', script: 'analyse.sh', outputs: ['results/*.txt'] },
  ],
});
`;

// The analysis: one result derived from what the package installed, one from the project's data.
const ANALYSE = `#!/bin/sh
set -e
cd /vmfile
mkdir -p results
sha256sum /usr/bin/hello | cut -d' ' -f1 > results/hello.txt
sort input.csv | sha256sum | cut -d' ' -f1 > results/sorted.txt
`;

/** `bundle` unpacked into `work`, changed by `change`, and packed again as NAME.vmbundle there. */
async function repack(bundle: string, work: string, name: string, change: (dir: string) => Promise<void>): Promise<string> {
  const dir = join(work, name);
  await mkdir(dir);
  await exec('tar', ['-xf', bundle, '-C', dir]);
  await change(dir);
  const out = join(work, `${name}.vmbundle`);
  await exec('tar', ['-cf', out, '-C', dir, 'study.json', 'packages.tar', 'project']);
  return out;
}

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
  let study: string;
  let replay: string;
  let hello: LockedDeb;
  /** `dpkg-query -W` in the study's first machine. */
  let listedFirst: string;
  /** The outputs the study recorded: guest path -> sha256. */
  let studyOutputs: Record<string, string>;
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
    project = await makeProject(VMFILE, { 'analyse.sh': ANALYSE, 'input.csv': 'b,2\na,1\n' });
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
    await cli('vmfile', ['destroy', '-f'], { cwd: project, env: { VMFILE_HOME: shared } }).catch(() => undefined);
    for (const dir of [replay, join(tmpfs, 'changed')]) await cli('vmfile', ['destroy', '-f'], { ...inNs({}, join(tmpfs, 'offline')), cwd: dir }).catch(() => undefined);
    for (const server of servers) server.kill('SIGKILL');
    await exec('umount', [tmpfs]).catch(() => undefined);
    await exec('ip', ['netns', 'del', netns]).catch(() => undefined);
    await rm(`/etc/netns/${netns}`, { recursive: true, force: true });
    await rm(project, { recursive: true, force: true });
    await rm(work, { recursive: true, force: true });
  });

  it('vmup of the study: Vmfile.lock lists every package of the box and the one the step installed, each with its sha256 and in the package store, and both outputs', async () => {
    // A plain vmup: the leading once step is made a provisioning layer on the way (its own, by the run's UUID).
    await cliOk('vmup', [], { cwd: project, env: { VMFILE_HOME: shared }, timeoutMs: 900_000 });
    const locked = (JSON.parse(await readFile(join(project, 'Vmfile.lock'), 'utf8')) as LockJson).machines['default'] ?? expect.fail('no lock entry');
    lock = locked;
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
    hello = locked.steps?.['install hello']?.packages.find((deb) => deb.name === 'hello') ?? expect.fail(`the step's packages: ${JSON.stringify(locked.steps)}`);
    expect(await sha256(join(shared, 'debs', `${hello.sha256}.deb`))).toBe(hello.sha256);
    studyOutputs = locked.outputs?.['analyse'] ?? expect.fail('no outputs recorded');
    expect(Object.keys(studyOutputs).sort()).toEqual(['/vmfile/results/hello.txt', '/vmfile/results/sorted.txt']);
    const binary = (await cliOk('vmssh', ['-c', 'sha256sum /usr/bin/hello'], { cwd: project, env: { VMFILE_HOME: shared } })).stdout.split(' ')[0];
    expect(await cliOk('vmssh', ['-c', 'cat /vmfile/results/hello.txt'], { cwd: project, env: { VMFILE_HOME: shared } }).then((result) => result.stdout.trim())).toBe(binary);
    const shown = JSON.parse((await cliOk('vmfile', ['lock', '--json'], { cwd: project, env: { VMFILE_HOME: shared } })).stdout) as { packages: { pinned: number; missing: number } }[];
    expect(shown[0]?.packages).toMatchObject({ pinned: packages.length, missing: 0 });
    expect((await cliOk('vmfile', ['lock'], { cwd: project, env: { VMFILE_HOME: shared } })).stdout).toMatch(/steps' packages: 1 pinned; in the package store: 1/);
    listedFirst = (await cliOk('vmssh', ['-c', 'dpkg-query -W'], { cwd: project, env: { VMFILE_HOME: shared } })).stdout;
    expect(listedFirst).toContain(`hello\t${hello.version}`);

    // The SBOM names the step's package as the step's, and both formats pass their schemas.
    const spdx = JSON.parse((await cliOk('vmfile', ['sbom', '--format', 'spdx'], { cwd: project, env: { VMFILE_HOME: shared } })).stdout) as { packages: { name: string; versionInfo: string; checksums?: { checksumValue: string }[]; comment?: string }[] };
    expect(await spdxValidator().then((validate) => validate(spdx))).toEqual([]);
    expect(spdx.packages.find((pkg) => pkg.name === 'hello')).toMatchObject({ versionInfo: hello.version, checksums: [{ checksumValue: hello.sha256 }], comment: 'brought by the step "install hello"' });
    const bom = (await cliOk('vmfile', ['sbom', '--format', 'cyclonedx'], { cwd: project, env: { VMFILE_HOME: shared } })).stdout;
    expect(await cyclonedxValidator()(bom)).toEqual([]);
    const components = (JSON.parse(bom) as { components: { components: { name: string; hashes?: { content: string }[] }[] }[] }).components[0]?.components ?? [];
    expect(components.find((component) => component.name === 'hello')?.hashes?.[0]?.content).toBe(hello.sha256);
    await cliOk('vmfile', ['destroy', '-f'], { cwd: project, env: { VMFILE_HOME: shared } });
  });

  it('bundle, then reproduce on another host with no network: the box is rebuilt bit for bit on a tmpfs with another umask, time zone and host name, taking the packages the bundle lacks from the snapshot source, never the mirror newer ones; the step installs the locked hello; every output matches', async () => {
    study = join(project, 'study.vmbundle');
    const made = JSON.parse((await cliOk('vmfile', ['bundle', '--output', 'study.vmbundle', '--json'], { cwd: project, env: { VMFILE_HOME: shared } })).stdout) as { packages: number; files: number; outputs: number };
    expect(made).toMatchObject({ packages: lock.recipe.packages.length + 1, files: 4, outputs: 2 });
    const members = (await exec('tar', ['-tf', study], { maxBuffer: 1 << 24 })).stdout.trim().split('\n');
    expect(members.filter((name) => name.startsWith('project/')).sort()).toEqual(['project/Vmfile.lock', 'project/Vmfile.ts', 'project/analyse.sh', 'project/input.csv']);
    // The package bundle inside is the one vmfile lock export writes.
    await exec('tar', ['-xf', study, '-C', work, 'packages.tar']);
    bundle = join(work, 'packages.tar');

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
    // The snapshot source: the locked files of those, and of the one test 4 changes, at the build's time.
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

    const partial = await repack(study, work, 'partial', async (dir) => {
      // The bundle lacks the three: their files and their lines.
      const packages = join(dir, 'packages');
      await mkdir(packages);
      await exec('tar', ['-xf', join(dir, 'packages.tar'), '-C', packages]);
      const listed = JSON.parse(await readFile(join(packages, 'packages.json'), 'utf8')) as { packages: LockedDeb[] };
      const gone = new Set(moved.map((deb) => deb.sha256));
      listed.packages = listed.packages.filter((deb) => !gone.has(deb.sha256));
      await writeFile(join(packages, 'packages.json'), JSON.stringify(listed));
      for (const digest of gone) await rm(join(packages, `${digest}.deb`));
      await exec('tar', ['-cf', join(dir, 'packages.tar'), '-C', packages, 'packages.json', ...listed.packages.map((deb) => `${deb.sha256}.deb`)]);
      await rm(packages, { recursive: true });
    });

    const home = join(tmpfs, 'offline');
    replay = join(tmpfs, 'replay');
    const options = { ...inNs({}, home), cwd: tmpfs };
    const reproduced = await cliOk('vmfile', ['reproduce', partial, '--into', replay, '--keep'], options);
    expect(reproduced.stderr).toContain(`rebuilding it from the ${lock.recipe.packages.length} packages the lock names`);
    expect(reproduced.stderr).toContain('Fetching 3 locked packages the store does not have');
    for (const [path, digest] of Object.entries(studyOutputs)) expect(reproduced.stdout).toMatch(new RegExp(`${path}\\s+${digest.slice(0, 16)}…\\s+${digest.slice(0, 16)}…\\s+match`));
    const rebuilt = JSON.parse(await readFile(join(home, 'boxes', 'debian-12', lock.version, 'box.json'), 'utf8')) as { disk: { sha256: string }; boot: { kernelSha256: string; initrdSha256: string } };
    expect(rebuilt.disk.sha256).toBe(lock.sha256);
    expect(await sha256(join(home, 'boxes', 'debian-12', lock.version, 'disk.qcow2'))).toBe(lock.sha256);
    expect([rebuilt.boot.kernelSha256, rebuilt.boot.initrdSha256]).toEqual([lock.kernelSha256, lock.initrdSha256]);
    // The mirror was asked for the locked files only (it had none of them), never for the newer ones.
    const asked = (await readFile(mirrorLog, 'utf8')).split('\n').filter((line) => line.startsWith('2') || line.startsWith('4'));
    for (const deb of moved) expect(asked).toContain(`404 /debian/${poolPath(deb)}`);
    expect(asked.filter((line) => line.includes('+moved1'))).toEqual([]);
    expect((await readFile(snapshotLog, 'utf8')).split('\n').filter((line) => line.startsWith('200 '))).toHaveLength(3);
    const inReplay = { ...options, cwd: replay };
    // The step's own apt output: hello came from the pinned source, and the guest lists exactly what the study's did.
    expect(reproduced.stdout + reproduced.stderr).toContain(`Get:1 file:/var/lib/vmfile/pinned ./ hello ${hello.version}`);
    expect((await cliOk('vmssh', ['-c', 'cat /etc/debian_version'], inReplay)).stdout).toMatch(/^12\.\d+\n$/);
    const listed = (await cliOk('vmssh', ['-c', 'dpkg-query -W'], inReplay)).stdout;
    expect(listed).toContain(`sudo\t${moved[0]?.version}`);
    expect(listed).toBe(listedFirst);
    // The guest really had no mirror: the step's apt-get update fetched no index from it.
    const lists = (await cliOk('vmssh', ['-c', 'ls /var/lib/apt/lists'], inReplay)).stdout;
    expect(lists).toContain('_var_lib_vmfile_pinned_._Packages');
    expect(lists).not.toContain('deb.debian.org');
    const shown = JSON.parse((await cliOk('vmfile', ['lock', '--json'], inReplay)).stdout) as { status: string; packages: { stored: Record<string, number>; missing: number } }[];
    expect(shown[0]).toMatchObject({ status: 'verified', packages: { missing: 0, stored: { snapshot: 3 } } });
    await cliOk('vmfile', ['destroy', '-f'], inReplay);
  });

  it('the same bundle with its analysis changed to write something else reports the output that differs, exits non-zero and leaves no machine', async () => {
    const changed = await repack(study, work, 'changed', async (dir) => {
      await writeFile(join(dir, 'project', 'analyse.sh'), `${ANALYSE}echo changed >> results/hello.txt\n`);
    });
    const into = join(tmpfs, 'changed');
    const options = { ...inNs({}, join(tmpfs, 'offline')), cwd: tmpfs };
    const result = await cli('vmfile', ['reproduce', changed, '--into', into], options);
    expect(result.code, explain(result)).toBe(1);
    const hashOf = (path: string) => studyOutputs[path]?.slice(0, 16) ?? expect.fail(`no ${path}`);
    expect(result.stdout).toMatch(new RegExp(`/vmfile/results/hello.txt\\s+${hashOf('/vmfile/results/hello.txt')}…\\s+[0-9a-f]{16}…\\s+differs`));
    expect(result.stdout).toMatch(new RegExp(`/vmfile/results/sorted.txt\\s+${hashOf('/vmfile/results/sorted.txt')}…\\s+${hashOf('/vmfile/results/sorted.txt')}…\\s+match`));
    expect(result.stderr).toContain('1 of 2 outputs do not match the study\'s lock: /vmfile/results/hello.txt (differs)');
    const status = JSON.parse((await cliOk('vmfile', ['status', '--json'], { ...options, cwd: into })).stdout) as { status: string }[];
    expect(status.map((entry) => entry.status)).toEqual(['not created']);
  });

  it('a package that no source has stops the rebuild with the list and every place tried; nothing is installed or left staged', async () => {
    const home = join(tmpfs, 'missing');
    // A project of its own: the first one's machine exists now, and keeps its box.
    const other = await makeProject(VMFILE, { 'analyse.sh': ANALYSE, 'input.csv': 'b,2\na,1\n' });
    await copyFile(join(project, 'Vmfile.lock'), join(other, 'Vmfile.lock'));
    const options = { ...inNs({}, home), cwd: other };
    await cliOk('vmfile', ['lock', 'import', bundle], options);
    const gone = lock.recipe.packages.filter((deb) => deb.name === 'dash' || deb.name === 'udev');
    expect(gone).toHaveLength(2);
    for (const deb of gone) await rm(join(home, 'debs', `${deb.sha256}.deb`));
    await flipLastByte(join(home, 'debs', `${tampered.sha256}.deb`));
    const up = await cli('vmup', [], options);
    expect(up.code, explain(up)).toBe(1);
    // On the way, the changed file is refused and the locked one fetched from the snapshot source.
    expect(up.stderr).toContain(`refused ${tampered.name} ${tampered.version} ${tampered.architecture}: the stored file`);
    expect(await readFile(snapshotLog, 'utf8')).toContain(`200 /archive/debian/`);
    expect(await readFile(snapshotLog, 'utf8')).toContain(`/${poolPath(tampered)}`);
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

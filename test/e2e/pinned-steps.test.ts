/**
 * What a step installs is pinned, through the built CLI on the test store's debian-12
 * box. A step runs `apt-get install` of a real Debian package from Debian's mirror: the
 * lock records it with its .deb's sha256 (the file the guest's apt kept, now in the
 * package store) and the SBOM names it as the step's. Then a second project with the same
 * Vmfile and that lock comes up inside a network namespace with only loopback, so its
 * guest cannot reach any mirror: the unchanged step installs the same package at the same
 * version from the pinned source, the guest lists exactly what the first one listed, and
 * the lock is left as it was. The step is a leading once step, so both runs go through a
 * provisioning layer (made on the way), as a plain vmup does.
 */
import { execFile } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { copyFile, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { cyclonedxValidator, spdxValidator } from '../fixtures/schemas/validate.js';
import { cli, cliOk, makeProject, WARM_SHAPE, type CliOptions } from './cli.js';

const exec = promisify(execFile);

const STEP = 'install hello';
// A step of this run alone: its layers are made by this run, never found in the store from an earlier one.
const VMFILE = `import { defineVm } from 'vmfile';
export default defineVm({
  box: 'debian-12', ${WARM_SHAPE}, folders: [],
  provision: [{ name: '${STEP}', shell: 'apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q hello # run ${randomUUID()}' }],
});
`;

interface LockedDeb {
  name: string;
  version: string;
  architecture: string;
  sha256: string;
}

type Lock = { machines: Record<string, { steps?: Record<string, { packages: LockedDeb[]; unpinned?: string[] }> }> };

describe('the packages a step installs, pinned', () => {
  const home = inject('vmfileHome');
  const netns = `vmfile-e2e-pin-${process.pid}`;
  let first: string;
  let second: string;
  let hello: LockedDeb;
  let listedFirst: string;

  const offline = (): CliOptions => ({ cwd: second, netns, timeoutMs: 900_000 });

  beforeAll(async () => {
    first = await makeProject(VMFILE);
    second = await makeProject(VMFILE);
    await exec('ip', ['netns', 'add', netns]);
    await exec('ip', ['netns', 'exec', netns, 'ip', 'link', 'set', 'lo', 'up']);
  });

  afterAll(async () => {
    await cli('vmfile', ['destroy', '-f'], { cwd: first }).catch(() => undefined);
    await cli('vmfile', ['destroy', '-f'], offline()).catch(() => undefined);
    await exec('ip', ['netns', 'del', netns]).catch(() => undefined);
    for (const dir of [first, second]) await rm(dir, { recursive: true, force: true });
  });

  it("records the package a step installs in Vmfile.lock with its .deb's sha256, keeps the file, and the SBOM names the step", async () => {
    await cliOk('vmup', [], { cwd: first, timeoutMs: 900_000 });
    const lock = JSON.parse(await readFile(join(first, 'Vmfile.lock'), 'utf8')) as Lock;
    const step = lock.machines['default']?.steps?.[STEP];
    hello = step?.packages.find((deb) => deb.name === 'hello') ?? expect.fail(`no hello in the lock's step: ${JSON.stringify(step)}`);
    expect(step?.unpinned).toBeUndefined();
    // The guest's own copy of the file, and the store's, are the file the lock names.
    const { stdout } = await cliOk('vmssh', ['-c', `dpkg-query -W -f '\${Version} \${Architecture}' hello && echo && sha256sum /var/cache/apt/archives/hello_*.deb`], { cwd: first });
    const [installed, digest] = stdout.trim().split('\n');
    expect(installed).toBe(`${hello.version} ${hello.architecture}`);
    expect(digest?.split(' ')[0]).toBe(hello.sha256);
    expect(createHash('sha256').update(await readFile(join(home, 'debs', `${hello.sha256}.deb`))).digest('hex')).toBe(hello.sha256);
    listedFirst = (await cliOk('vmssh', ['-c', 'dpkg-query -W'], { cwd: first })).stdout;
    expect(listedFirst).toContain(`hello\t${hello.version}`);

    const spdx = JSON.parse((await cliOk('vmfile', ['sbom', '--format', 'spdx'], { cwd: first })).stdout) as { packages: { name: string; versionInfo: string; checksums?: { checksumValue: string }[]; comment?: string }[] };
    expect(await spdxValidator().then((validate) => validate(spdx))).toEqual([]);
    const described = spdx.packages.find((pkg) => pkg.name === 'hello');
    expect(described).toMatchObject({ versionInfo: hello.version, checksums: [{ checksumValue: hello.sha256 }], comment: `brought by the step "${STEP}"` });
    const bom = (await cliOk('vmfile', ['sbom', '--format', 'cyclonedx'], { cwd: first })).stdout;
    expect(await cyclonedxValidator()(bom)).toEqual([]);
    const components = (JSON.parse(bom) as { components: { components: { name: string; hashes?: { content: string }[] }[] }[] }).components[0]?.components ?? [];
    expect(components.find((component) => component.name === 'hello')?.hashes?.[0]?.content).toBe(hello.sha256);
    const report = (await cliOk('vmfile', ['lock'], { cwd: first })).stdout;
    expect(report).toMatch(/steps' packages: \d+ pinned; in the package store: \d+/);
    // What another host needs to provision offline travels with the box's packages.
    await cliOk('vmfile', ['lock', 'export', '--output', 'packages.tar'], { cwd: first });
    expect((await exec('tar', ['-tf', join(first, 'packages.tar')], { maxBuffer: 1 << 24 })).stdout.split('\n')).toContain(`${hello.sha256}.deb`);
    await cliOk('vmfile', ['destroy', '-f'], { cwd: first });
  });

  it('gives a new machine from that lock, with no mirror reachable, the same version from the pinned source, and leaves the lock as it was', async () => {
    await copyFile(join(first, 'Vmfile.lock'), join(second, 'Vmfile.lock'));
    const before = await readFile(join(second, 'Vmfile.lock'), 'utf8');
    const up = await cliOk('vmup', [], offline());
    // The step's own apt output: the package came from the pinned source.
    expect(up.stdout + up.stderr).toContain(`Get:1 file:/var/lib/vmfile/pinned ./ hello ${hello.version}`);
    const listed = (await cliOk('vmssh', ['-c', 'dpkg-query -W'], offline())).stdout;
    expect(listed).toContain(`hello\t${hello.version}`);
    expect(listed).toBe(listedFirst);
    // The guest really had no mirror: the step's apt-get update fetched no index from it.
    const lists = (await cliOk('vmssh', ['-c', 'ls /var/lib/apt/lists'], offline())).stdout;
    expect(lists).toContain('_var_lib_vmfile_pinned_._Packages');
    expect(lists).not.toContain('deb.debian.org');
    expect(await readFile(join(second, 'Vmfile.lock'), 'utf8')).toBe(before);
  });
});

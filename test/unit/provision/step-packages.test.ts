/**
 * Pinning what steps install: the guest's package list read and compared, the lock's
 * record of each step's packages (merged run after run, one per line, checked when read,
 * kept by a box update only for the same disk), the apt preferences and the layer key
 * that follow the pinned set, the locating script run for real (bash, here), and the
 * SBOM's step layer.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { layerKey, pinsDigest } from '../../../src/lifecycle/layers.js';
import { pinPreferences } from '../../../src/provision/pinned-source.js';
import { addedOrChanged, LOCATE_SCRIPT, parseInstalled } from '../../../src/provision/step-packages.js';
import type { DebRef } from '../../../src/vmfile/deb-ref.js';
import { formatLockFile, parseLockFile, settleLock, type LockFile } from '../../../src/vmfile/lock.js';
import { pinnedStepPackages, withStepPackages } from '../../../src/vmfile/lock-steps.js';
import { tempDir } from '../temp-dir.js';

const sha = (text: string) => createHash('sha256').update(text).digest('hex');
const deb = (name: string, version: string, architecture = 'amd64'): DebRef => ({ name, version, architecture, sha256: sha(`${name} ${version} ${architecture}`) });

describe("the guest's installed packages", () => {
  test('only fully installed (or held) packages count, and lines not shaped as Debian names are dropped', () => {
    const listed = parseInstalled(['ii \thello\t2.10-3\tamd64', 'rc \told\t1.0\tamd64', 'hi \theld\t1:2.0\tall', 'ii \tBAD NAME\t1\tamd64', 'ii \tx\t$(reboot)\tamd64', 'iU \thalf\t1\tamd64', ''].join('\n'));
    expect([...listed.keys()]).toEqual(['hello:amd64', 'held:all']);
    expect(listed.get('held:all')).toEqual({ name: 'held', version: '1:2.0', architecture: 'all' });
  });

  test('a step added or changed what is new or at another version, sorted; removals are not installs', () => {
    const before = parseInstalled('ii \tlibc6\t2.36-9\tamd64\nii \tcurl\t7.88\tamd64\nii \tgone\t1\tamd64\n');
    const after = parseInstalled('ii \tlibc6\t2.36-9+deb12u1\tamd64\nii \tcurl\t7.88\tamd64\nii \thello\t2.10-3\tamd64\nii \tlibc6\t2.36-9\ti386\n');
    expect(addedOrChanged(before, after).map((item) => `${item.name}:${item.architecture} ${item.version}`)).toEqual(['hello:amd64 2.10-3', 'libc6:amd64 2.36-9+deb12u1', 'libc6:i386 2.36-9']);
  });

  test("the locating script falls back to apt-get download of the exact version, finds apt's name for it (an epoch's colon escaped), keeps only a file whose md5sums are the installed package's, and runs no name as code", async () => {
    // A stand-in apt-get that logs its arguments and "downloads" three packages, each with
    // its md5sums beside it; a stand-in dpkg-deb that shows them.
    const bin = await tempDir();
    for (const tool of ['mkdir', 'cat', 'cmp']) await symlink(execFileSync('/bin/sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim(), join(bin, tool));
    const downloads: Record<string, string> = { 'hello:amd64=1:2.0-1': 'hello_1%3a2.0-1_amd64.deb', 'tzdata=2024a-0': 'tzdata_2024a-0_all.deb', 'rebuilt:amd64=1.0': 'rebuilt_1.0_amd64.deb', 'empty:amd64=1': 'empty_1_amd64.deb' };
    const cases = Object.entries(downloads).map(([spec, file]) => `"${spec}") : > "${file}"; ${file.startsWith('empty') ? ':' : `printf '%s\\n' "${file.split('_')[0]} files" > "${file}.md5sums"`};;`).join(' ');
    await writeFile(join(bin, 'apt-get'), `#!/bin/sh\nprintf "%s\\n" "$3" >> ../apt-get.log\ncase "$3" in ${cases} esac\n`, { mode: 0o755 });
    await writeFile(join(bin, 'dpkg-deb'), '#!/bin/sh\n[ "$1" = -I ] && [ "$3" = md5sums ] && [ -e "$2.md5sums" ] && exec cat "$2.md5sums"\nexit 1\n', { mode: 0o755 });
    // What dpkg keeps for the installed packages: rebuilt's files differ from the archive's.
    const info = await tempDir();
    await writeFile(join(info, 'hello:amd64.md5sums'), 'hello files\n');
    await writeFile(join(info, 'tzdata.md5sums'), 'tzdata files\n');
    await writeFile(join(info, 'rebuilt:amd64.md5sums'), 'files built here\n');
    const scratch = join(await tempDir(), 'scratch');
    const args = ['hello', '1:2.0-1', 'amd64', 'tzdata', '2024a-0', 'all', 'rebuilt', '1.0', 'amd64', 'empty', '1', 'amd64', '$(touch x)', '1', 'amd64'];
    const out = execFileSync('/bin/bash', ['-c', LOCATE_SCRIPT, 'vmfile-locate', scratch, ...args], { encoding: 'utf8', env: { PATH: bin, VMFILE_DPKG_INFO: info } });
    expect(out.split('\0')).toEqual([join(scratch, 'hello_1%3a2.0-1_amd64.deb'), join(scratch, 'tzdata_2024a-0_all.deb'), '', join(scratch, 'empty_1_amd64.deb'), '', '']);
    expect(await readFile(join(scratch, '..', 'apt-get.log'), 'utf8')).toBe('hello:amd64=1:2.0-1\ntzdata=2024a-0\nrebuilt:amd64=1.0\nempty:amd64=1\n$(touch x):amd64=1\n');
    expect((await readdir(scratch)).filter((name) => name.endsWith('.deb')).sort()).toEqual(['empty_1_amd64.deb', 'hello_1%3a2.0-1_amd64.deb', 'rebuilt_1.0_amd64.deb', 'tzdata_2024a-0_all.deb']);
  });
});

describe("steps' packages in Vmfile.lock", () => {
  const lock: LockFile = { lockVersion: 1, machines: { default: { box: 'debian-12', version: '1.0', sha256: sha('disk'), source: 'recipe' } } };

  test('are recorded under the step, merged by name and architecture run after run, one per line, and read back', () => {
    const first = withStepPackages(lock, 'default', 'install R', { packages: [deb('r-base-core', '4.2.2'), deb('libblas3', '3.11')], unpinned: ['odd 1.0 amd64'] });
    expect(first?.changed).toEqual(['r-base-core 4.2.2 amd64', 'libblas3 3.11 amd64']);
    const text = formatLockFile(first?.lock ?? lock);
    expect(text).toContain(`\n            ${JSON.stringify(deb('libblas3', '3.11'))},\n            ${JSON.stringify(deb('r-base-core', '4.2.2'))}\n`);
    const read = parseLockFile(text, 'Vmfile.lock');
    // A second run installs nothing new: what was pinned stays; an upgrade replaces its package; a file found now pins what was unpinned.
    const second = withStepPackages(read, 'default', 'install R', { packages: [deb('libblas3', '3.12'), deb('odd', '1.0')], unpinned: [] });
    expect(second?.changed).toEqual(['libblas3 3.12 amd64', 'odd 1.0 amd64']);
    const steps = parseLockFile(formatLockFile(second?.lock ?? lock), 'Vmfile.lock').machines['default']?.steps;
    expect(steps).toEqual({ 'install R': { packages: [deb('libblas3', '3.12'), deb('odd', '1.0'), deb('r-base-core', '4.2.2')] } });
    expect(withStepPackages(lock, 'other', 'install R', { packages: [], unpinned: [] })).toBeUndefined();
  });

  test('every pinned package of a machine, once, whatever step brought it', () => {
    const one = withStepPackages(lock, 'default', 'a', { packages: [deb('hello', '2.10-3'), deb('jq', '1.6')], unpinned: [] });
    const two = withStepPackages(one?.lock ?? lock, 'default', 'b', { packages: [deb('hello', '2.10-3')], unpinned: [] });
    expect(pinnedStepPackages((two?.lock ?? lock).machines['default']).map((item) => item.name).sort()).toEqual(['hello', 'jq']);
    expect(pinnedStepPackages(lock.machines['nobody'])).toEqual([]);
  });

  test('a lock whose step packages are not shaped as Debian gives them is refused, naming the field', () => {
    const bad = (steps: unknown) => JSON.stringify({ lockVersion: 1, machines: { default: { ...lock.machines['default'], steps } } });
    expect(() => parseLockFile(bad({ a: { packages: [{ ...deb('hello', '1'), name: '../x' }] } }), 'Vmfile.lock')).toThrow(/machines\.default\.steps\.a\.packages\[0\]\.name: expected a Debian package name/);
    expect(() => parseLockFile(bad({ a: { packages: [], unpinned: ['hello; rm -rf /'] } }), 'Vmfile.lock')).toThrow(/steps\.a\.unpinned\[0\]: expected "name version architecture"/);
    expect(() => parseLockFile(bad({ a: { packages: [], extra: 1 } }), 'Vmfile.lock')).toThrow(/unknown key "extra"/);
  });

  test('a box update keeps the steps\' packages only for the same disk: they were resolved against its packages', () => {
    const pinned = withStepPackages(lock, 'default', 'a', { packages: [deb('hello', '2.10-3')], unpinned: [] })?.lock ?? lock;
    const metadata = (disk: string) => ({ name: 'debian-12', version: '2.0', architecture: 'x86_64', disk: { file: 'disk.qcow2', format: 'qcow2', sha256: disk, virtualSize: 1 }, boot: { type: 'firmware', firmware: 'bios' }, user: 'vm', created: '2026-12-07T00:00:00Z', source: { kind: 'import', file: 'x.qcow2', format: 'qcow2' } });
    const where = { machine: 'default', lockPath: 'Vmfile.lock' };
    expect(settleLock(pinned, where, { metadata: metadata(sha('disk')) as never, diskSha256: sha('disk') }, { update: true }).lock.machines['default']?.steps).toEqual(pinned.machines['default']?.steps);
    expect(settleLock(pinned, where, { metadata: metadata(sha('new')) as never, diskSha256: sha('new') }, { update: true }).lock.machines['default']?.steps).toBeUndefined();
  });
});

describe('the pinned source', () => {
  test('apt preferences hold each locked version above any archive, one stanza per version', () => {
    expect(pinPreferences([deb('hello', '2.10-3'), deb('libc6', '2.36-9', 'i386'), deb('libc6', '2.36-9')])).toBe('Package: hello\nPin: version 2.10-3\nPin-Priority: 1001\n\nPackage: libc6\nPin: version 2.36-9\nPin-Priority: 1001\n');
  });

  test("a layer's key follows the pinned set, and a set of none keeps the keys layers had before", () => {
    const parent = '1'.repeat(32);
    expect(pinsDigest([])).toBeUndefined();
    expect(layerKey(parent, 'h', pinsDigest([]))).toBe(layerKey(parent, 'h'));
    const pins = pinsDigest([deb('hello', '2.10-3'), deb('jq', '1.6')]);
    expect(pins).toBe(pinsDigest([deb('jq', '1.6'), deb('hello', '2.10-3')]));
    expect(layerKey(parent, 'h', pins)).not.toBe(layerKey(parent, 'h'));
    expect(layerKey(parent, 'h', pinsDigest([deb('hello', '2.10-4')]))).not.toBe(layerKey(parent, 'h', pinsDigest([deb('hello', '2.10-3')])));
  });
});

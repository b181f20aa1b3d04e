import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { cacheableSteps, layerKey } from '../../../src/lifecycle/layers.js';
import { stepHash } from '../../../src/provision/runner.js';
import { listCache, pruneCache } from '../../../src/services/cache.js';
import { machinePaths, projectIndexFile, warmPaths } from '../../../src/store/layout.js';
import { withLock } from '../../../src/store/lock.js';
import { recordProject, registerMachineUse } from '../../../src/store/projects.js';
import { normalizeStep, stepInputSchema, type ProvisionStep } from '../../../src/vmfile/steps.js';
import { tempDir } from '../temp-dir.js';
import { qemuFiles } from '../../../src/driver/qemu/files.js';

const step = (input: Record<string, unknown>, index = 0): ProvisionStep => normalizeStep(stepInputSchema.parse(input), index);

describe('which steps are layered', () => {
  test('the leading once steps that run in the guest, up to the first that cannot be cached', () => {
    const steps = [
      step({ name: 'apt', shell: 'apt-get install -y r-base' }),
      step({ name: 'conf', file: { source: 'conf', destination: '/etc/app' } }, 1),
      step({ name: 'setup', script: 'setup.sh', args: ['x'] }, 2),
      step({ name: 'every boot', shell: 'date', run: 'always' }, 3),
      step({ name: 'later', shell: 'true' }, 4),
    ];
    expect(cacheableSteps(steps).map((s) => s.id)).toEqual(['apt', 'conf', 'setup']);
  });

  test.each([
    ['an always step', { shell: 'true', run: 'always' }],
    ['a never step', { shell: 'true', run: 'never' }],
    ['cache: false', { shell: 'hostname > /etc/seen', cache: false }],
    ['an Ansible step', { ansible: { playbook: 'site.yml' } }],
  ])('%s ends the layered run, and no step after it is layered', (_what, input) => {
    const steps = [step({ name: 'first', shell: 'true' }), step({ name: 'stop', ...input }, 1), step({ name: 'after', shell: 'true' }, 2)];
    expect(cacheableSteps(steps).map((s) => s.id)).toEqual(['first']);
  });

  test('cache is checked as a Vmfile field', () => {
    const parsed = stepInputSchema.safeParse({ shell: 'true', cache: 'yes' });
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues[0]).toMatchObject({ path: ['cache'], message: 'expected true or false' });
  });

  test('cache: false does not change what the step is: its hash stays the one recorded before', async () => {
    const dir = await tempDir();
    expect(await stepHash(step({ name: 'a', shell: 'true', cache: false }), dir)).toBe(await stepHash(step({ name: 'a', shell: 'true' }), dir));
    expect(await stepHash(step({ name: 'a', shell: 'true', cache: true }), dir)).toBe(await stepHash(step({ name: 'a', shell: 'true' }), dir));
  });

  test("a layer's key changes with its parent and with its step", () => {
    const [parent, other] = ['1'.repeat(32), '2'.repeat(32)];
    expect(layerKey(parent, 'h')).toMatch(/^[0-9a-f]{32}$/);
    expect(layerKey(parent, 'h')).toBe(layerKey(parent, 'h'));
    expect(layerKey(other, 'h')).not.toBe(layerKey(parent, 'h'));
    expect(layerKey(parent, 'h2')).not.toBe(layerKey(parent, 'h'));
  });

  test("a step's hash follows its script's contents, args and env", async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'setup.sh'), 'echo one\n');
    const before = await stepHash(step({ name: 's', script: 'setup.sh' }), dir);
    expect(await stepHash(step({ name: 's', script: 'setup.sh', args: ['x'] }), dir)).not.toBe(before);
    expect(await stepHash(step({ name: 's', script: 'setup.sh', env: { A: '1' } }), dir)).not.toBe(before);
    await writeFile(join(dir, 'setup.sh'), 'echo two\n');
    expect(await stepHash(step({ name: 's', script: 'setup.sh' }), dir)).not.toBe(before);
  });
});

describe('vmfile cache list and prune', () => {
  const record = (key: string, layer?: { parent: string; name: string }) => ({
    format: 1,
    key,
    box: { name: 'debian-12', version: '2026.11.28', sha256: 'a'.repeat(64) },
    shape: { cpus: 2, memory: 1024 ** 3, disk: 4 * 1024 ** 3, accel: 'tcg', boot: 'kernel', privateNic: false },
    qemu: 'QEMU emulator version 7.2.22',
    user: 'vm',
    generation: '7f1c3b0e-0a4e-4d55-9c1b-2f0d6f1e8a11',
    createdAt: '2026-11-28T17:00:00.000Z',
    ...(layer === undefined ? {} : { layer: { parent: layer.parent, step: { id: layer.name, name: layer.name, hash: 'f'.repeat(64) } } }),
  });

  async function writeState(home: string, key: string, layer?: { parent: string; name: string }): Promise<void> {
    const paths = warmPaths(home, key);
    await mkdir(paths.machine.dir, { recursive: true });
    for (const file of [paths.memory, paths.machine.privateKey, paths.machine.hostPublicKey]) await writeFile(file, 'x');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', qemuFiles(paths.dir).overlay, '1M']);
    await writeFile(paths.record, JSON.stringify(record(key, layer)));
  }

  async function machineOver(home: string, project: string, name: string, key: string): Promise<void> {
    const paths = machinePaths(project, name);
    await mkdir(paths.dir, { recursive: true });
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', qemuFiles(warmPaths(home, key).dir).overlay, '-F', 'qcow2', qemuFiles(paths.dir).overlay, '1M']);
    await recordProject(home, { project, vmfile: join(project, 'Vmfile.ts') });
  }

  // base <- apt <- conf, and another base nobody uses.
  const [base, apt, conf, spare] = ['1'.repeat(32), '2'.repeat(32), '3'.repeat(32), '4'.repeat(32)];

  async function cache(): Promise<{ home: string; project: string }> {
    const home = await tempDir();
    const project = await tempDir();
    await writeState(home, base);
    await writeState(home, apt, { parent: base, name: 'apt' });
    await writeState(home, conf, { parent: apt, name: 'conf' });
    await writeState(home, spare);
    return { home, project };
  }

  test('a machine stands on the layer its disk is made over and on every state under it', async () => {
    const { home, project } = await cache();
    await machineOver(home, project, 'web', apt);
    const listing = await listCache(home);
    const usedBy = Object.fromEntries(listing.entries.map((entry) => [entry.key, entry.usedBy]));
    const web = `machine "web" of ${project}`;
    expect(usedBy).toEqual({ [base]: [web], [apt]: [web], [conf]: [], [spare]: [] });
    expect(listing.entries.find((entry) => entry.key === apt)?.layer).toMatchObject({ parent: base, step: { name: 'apt' } });
  });

  test('prune removes what no machine stands on, and keeps the rest whole', async () => {
    const { home, project } = await cache();
    await machineOver(home, project, 'web', apt);
    const dry = await pruneCache(home, { dryRun: true });
    expect(dry.removed.map((entry) => entry.key).sort()).toEqual([conf, spare]);
    expect((await listCache(home)).entries).toHaveLength(4);
    await pruneCache(home, { dryRun: false });
    expect((await listCache(home)).entries.map((entry) => entry.key)).toEqual([base, apt]);
  });

  test('what a killed maker left is listed as unfinished, and cleared by prune unless a maker holds it', async () => {
    const { home } = await cache();
    const [left, busy] = ['5'.repeat(32), '6'.repeat(32)];
    for (const key of [left, busy]) {
      await mkdir(warmPaths(home, key, true).dir, { recursive: true });
      await writeFile(warmPaths(home, key, true).memory, 'half');
    }
    expect((await listCache(home)).unfinished.sort()).toEqual([left, busy]);
    expect((await pruneCache(home, { dryRun: true })).cleared).toEqual([]);
    expect(existsSync(warmPaths(home, left, true).dir)).toBe(true);
    const result = await withLock(warmPaths(home, busy).lock, 'a maker', 'make it', () => pruneCache(home, { dryRun: false }));
    expect(result.cleared).toEqual([left]);
    expect(existsSync(warmPaths(home, left, true).dir)).toBe(false);
    expect(existsSync(warmPaths(home, busy, true).memory)).toBe(true);
  });

  test('a project moved away keeps what its machines stand on: their disks still name the states by absolute path', async () => {
    const { home, project } = await cache();
    await machineOver(home, project, 'web', apt);
    // What vmup registers before it makes the disk (lifecycle/start.ts).
    await registerMachineUse(home, { project, vmfile: join(project, 'Vmfile.ts') }, 'web', { box: { name: 'debian-12', version: '2026.11.28' }, states: [apt, base] });
    const moved = `${project}-moved`;
    await rename(project, moved);
    const listing = await listCache(home);
    expect(listing.entries.find((entry) => entry.key === apt)?.usedBy).toEqual([`machine "web" of ${project} (which cannot be read now)`]);
    await pruneCache(home, { dryRun: false });
    expect((await listCache(home)).entries.map((entry) => entry.key)).toEqual([base, apt]);
    // The moved machine's disk still opens: its base is whole.
    execFileSync('qemu-img', ['info', '--backing-chain', qemuFiles(machinePaths(moved, 'web').dir).overlay]);
  });

  test('a project that cannot be read, recorded by a vmfile that kept no uses, might use anything: prune removes nothing, and says how to forget it', async () => {
    const { home, project } = await cache();
    await machineOver(home, project, 'web', apt);
    // The entry as vmfile wrote it before it kept what machines stand on.
    await writeFile(projectIndexFile(home, project), JSON.stringify({ project, vmfile: join(project, 'Vmfile.ts') }));
    await rename(project, `${project}-elsewhere`);
    const result = await pruneCache(home, { dryRun: false });
    expect(result.removed).toEqual([]);
    expect(result.unknown).toEqual([expect.stringContaining('global-status --prune')]);
    expect((await listCache(home)).entries).toHaveLength(4);
  });

  test('a machine whose disk cannot be read might stand on anything: prune removes nothing', async () => {
    const { home, project } = await cache();
    await machineOver(home, project, 'web', apt);
    await mkdir(machinePaths(project, 'db').dir, { recursive: true });
    await writeFile(qemuFiles(machinePaths(project, 'db').dir).overlay, 'not an image');
    const result = await pruneCache(home, { dryRun: false });
    expect(result.unknown).toEqual([expect.stringContaining(`machine "db" of ${project}`)]);
    expect(result.removed).toEqual([]);
    expect((await listCache(home)).entries).toHaveLength(4);
  });
});

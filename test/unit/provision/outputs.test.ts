/**
 * Declared outputs: the guest's hashing script run for real (bash, here), patterns from
 * the Vmfile treated as globs and never as code, the lock's record of them, where
 * relative outputs point, and that such a step is never layered.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { GuestError } from '../../../src/errors.js';
import { cacheableSteps } from '../../../src/lifecycle/layers.js';
import { OUTPUTS_SCRIPT, outputsCommand, parseOutputs } from '../../../src/provision/outputs.js';
import { stepHash } from '../../../src/provision/runner.js';
import { parseVmfile } from '../../../src/vmfile/config.js';
import { formatLockFile, parseLockFile, settleLock, type LockFile } from '../../../src/vmfile/lock.js';
import { withOutputs } from '../../../src/vmfile/lock-steps.js';
import { tempDir } from '../temp-dir.js';

const sha = (text: string) => createHash('sha256').update(text).digest('hex');

function hashHere(patterns: string[]): string {
  return execFileSync('bash', ['-c', OUTPUTS_SCRIPT, 'vmfile-outputs', ...patterns], { encoding: 'utf8' });
}

describe('hashing outputs in the guest', () => {
  test('globs (with ** across directories) match files only, each file read back exactly, whatever its name', async () => {
    const dir = await tempDir();
    await mkdir(join(dir, 'results', 'deep', 'er'), { recursive: true });
    const files: Record<string, string> = { 'results/a.csv': 'a', 'results/b c.csv': 'b', 'results/deep/er/x.csv': 'x', 'results/new\nline.csv': 'n', 'results/.hidden.csv': 'h', 'results/notes.txt': 't' };
    for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
    const patterns = [`${dir}/results/*.csv`, `${dir}/results/**/x.csv`, `${dir}/results/notes.txt`, `${dir}/missing/*.csv`];
    const matched = parseOutputs(hashHere(patterns), patterns);
    expect(matched[0]).toEqual(['results/.hidden.csv', 'results/a.csv', 'results/b c.csv', 'results/new\nline.csv'].map((name) => ({ path: join(dir, name), sha256: sha(files[name] ?? '') })));
    expect(matched[1]).toEqual([{ path: join(dir, 'results/deep/er/x.csv'), sha256: sha('x') }]);
    expect(matched[2]).toEqual([{ path: join(dir, 'results/notes.txt'), sha256: sha('t') }]);
    expect(matched[3]).toEqual([]);
  });

  test('a pattern is never run: command substitution, variables and separators in it stay text', async () => {
    const dir = await tempDir();
    const marker = join(dir, 'pwned');
    const patterns = [`$(touch ${marker})`, `\`touch ${marker}\``, `${dir}/x; touch ${marker}`, '$HOME/*', `${dir}/*' '*`];
    expect(parseOutputs(hashHere(patterns), patterns).flat()).toEqual([]);
    expect(existsSync(marker)).toBe(false);
    // The same patterns reach the guest quoted one by one.
    expect(outputsCommand(patterns)).toContain(`'$(touch ${marker})'`);
  });

  test('output that is not in the expected form is refused, not half read', () => {
    expect(() => parseOutputs(`0\0${'z'.repeat(64)}\0/x\0`, ['/x'])).toThrow(GuestError);
    expect(() => parseOutputs(`7\0${sha('a')}\0/x\0`, ['/x'])).toThrow(GuestError);
    expect(() => parseOutputs(`0\0${sha('a')}\0relative\0`, ['/x'])).toThrow(GuestError);
  });
});

describe('outputs in the Vmfile', () => {
  const VMFILE = '/projects/study/Vmfile.ts';

  test('relative outputs are under the project folder in the guest, absolute ones stay; declaring them changes no step hash', async () => {
    const project = parseVmfile({ box: 'debian-12', provision: [{ name: 'analysis', shell: 'make', outputs: ['results/*.csv', '/srv/out.txt'] }] }, VMFILE, '/projects/study');
    const step = project.machines[0]?.provision[0];
    expect(step?.outputs).toEqual(['/vmfile/results/*.csv', '/srv/out.txt']);
    const moved = parseVmfile({ box: 'debian-12', folders: [{ host: '.', guest: '/work' }], provision: [{ shell: 'make', outputs: ['r.csv'] }] }, VMFILE, '/projects/study');
    expect(moved.machines[0]?.provision[0]?.outputs).toEqual(['/work/r.csv']);
    const plain = parseVmfile({ box: 'debian-12', provision: [{ name: 'analysis', shell: 'make' }] }, VMFILE, '/projects/study');
    const dir = await tempDir();
    expect(await stepHash(step as never, dir)).toBe(await stepHash(plain.machines[0]?.provision[0] as never, dir));
  });

  test('a relative output with no project folder, or a bad one, is refused naming the field', () => {
    expect(() => parseVmfile({ box: 'debian-12', folders: [], provision: [{ name: 'analysis', shell: 'make', outputs: ['results/*.csv'] }] }, VMFILE, '/projects/study')).toThrow(/step "analysis": output "results\/\*\.csv" is relative, but no folder syncs the project directory/);
    expect(() => parseVmfile({ box: 'debian-12', provision: [{ shell: 'make', outputs: ['a\nb'] }] }, VMFILE, '/projects/study')).toThrow(/outputs/);
  });

  test('a step with outputs ends the layered run: it runs in the machine, where they are recorded', () => {
    const project = parseVmfile({ box: 'debian-12', provision: [{ name: 'apt', shell: 'true' }, { name: 'analysis', shell: 'make', outputs: ['r.csv'] }, { name: 'after', shell: 'true' }] }, VMFILE, '/projects/study');
    expect(cacheableSteps(project.machines[0]?.provision ?? []).map((step) => step.name)).toEqual(['apt']);
  });
});

describe('outputs in Vmfile.lock', () => {
  const lock: LockFile = { lockVersion: 1, machines: { default: { box: 'debian-12', version: '1.0', sha256: sha('disk'), source: 'recipe' } } };

  test('are recorded by step, sorted, survive a round trip and a box update, and say what changed', () => {
    const first = withOutputs(lock, 'default', 'analysis', { '/vmfile/results/b.csv': sha('b'), '/vmfile/results/a.csv': sha('a') });
    expect(first?.changes).toEqual([]);
    const text = formatLockFile(first?.lock ?? lock);
    expect(text.indexOf('/vmfile/results/a.csv')).toBeLessThan(text.indexOf('/vmfile/results/b.csv'));
    const read = parseLockFile(text, 'Vmfile.lock');
    expect(read.machines['default']?.outputs).toEqual({ analysis: { '/vmfile/results/a.csv': sha('a'), '/vmfile/results/b.csv': sha('b') } });
    const second = withOutputs(read, 'default', 'analysis', { '/vmfile/results/a.csv': sha('A') });
    expect(second?.changes).toEqual([`/vmfile/results/a.csv: ${sha('a').slice(0, 12)}... is now ${sha('A').slice(0, 12)}...`, '/vmfile/results/b.csv: no longer made']);
    expect(withOutputs(lock, 'other', 'analysis', {})).toBeUndefined();
    const metadata = { name: 'debian-12', version: '2.0', architecture: 'x86_64', disk: { file: 'disk.qcow2', format: 'qcow2', sha256: sha('new disk'), virtualSize: 1 }, boot: { type: 'firmware', firmware: 'bios' }, user: 'vm', created: '2026-12-07T00:00:00Z', source: { kind: 'import', file: 'x.qcow2', format: 'qcow2' } };
    const updated = settleLock(read, { machine: 'default', lockPath: 'Vmfile.lock' }, { metadata: metadata as never, diskSha256: sha('new disk') }, { update: true });
    expect(updated.lock.machines['default']?.outputs).toEqual(read.machines['default']?.outputs);
  });

  test('a lock with a bad output digest or a relative path is refused', () => {
    const bad = (outputs: unknown) => JSON.stringify({ lockVersion: 1, machines: { default: { ...lock.machines['default'], outputs } } });
    expect(() => parseLockFile(bad({ analysis: { '/x': 'nothex' } }), 'Vmfile.lock')).toThrow(/Vmfile.lock is invalid/);
    expect(() => parseLockFile(bad({ analysis: { x: sha('x') } }), 'Vmfile.lock')).toThrow(/Vmfile.lock is invalid/);
  });
});

import { mkdir, writeFile } from 'node:fs/promises';
import { describe, expect, test } from 'vitest';
import type { InstalledBox } from '../../../src/box/store.js';
import { qemuVersion } from '../../../src/qemu/host.js';
import { qemuDriver } from '../../../src/driver/qemu/driver.js';
import { qemuFiles } from '../../../src/driver/qemu/files.js';
import { ConfigError } from '../../../src/errors.js';
import { ensureWarmState, listWarmStates, removeWarmStates, warmKey, type WarmShape } from '../../../src/lifecycle/warm.js';
import { quiet } from '../quiet-reporter.js';
import { warmPaths } from '../../../src/store/layout.js';
import { tempDir } from '../temp-dir.js';

const box = { metadata: { name: 'debian-12', version: '2026.11.28', disk: { sha256: 'a'.repeat(64) }, boot: { type: 'kernel', cmdline: 'root=/dev/vda' } } } as unknown as InstalledBox;
const shape: WarmShape = { cpus: 2, memory: 1024 ** 3, disk: 4 * 1024 ** 3, accel: 'tcg', boot: 'kernel', privateNic: false };
const QEMU = 'QEMU emulator version 7.2.22';

describe('warmKey', () => {
  test('the same box, shape and QEMU give the same key', () => {
    expect(warmKey(box, shape, QEMU)).toBe(warmKey(box, { ...shape }, QEMU));
    expect(warmKey(box, shape, QEMU)).toMatch(/^[0-9a-f]{32}$/);
  });

  test("the order of the metadata's fields does not count (a box just imported, and the same box read back)", () => {
    const reordered = { metadata: { ...box.metadata, boot: { cmdline: 'root=/dev/vda', type: 'kernel' } } } as unknown as InstalledBox;
    expect(warmKey(reordered, shape, QEMU)).toBe(warmKey(box, shape, QEMU));
    const { cpus, ...rest } = shape;
    expect(warmKey(box, { ...rest, cpus }, QEMU)).toBe(warmKey(box, shape, QEMU));
  });

  test.each([
    ['CPUs', { ...shape, cpus: 1 }, box, QEMU],
    ['memory', { ...shape, memory: 2 * 1024 ** 3 }, box, QEMU],
    ['disk', { ...shape, disk: 8 * 1024 ** 3 }, box, QEMU],
    ['accelerator', { ...shape, accel: 'kvm' as const }, box, QEMU],
    ['private NIC', { ...shape, privateNic: true }, box, QEMU],
    ['QEMU version', shape, box, 'QEMU emulator version 8.0.0'],
    ['box disk', shape, { metadata: { ...box.metadata, disk: { sha256: 'b'.repeat(64) } } } as unknown as InstalledBox, QEMU],
    ['box version', shape, { metadata: { ...box.metadata, version: '2026.12.1' } } as unknown as InstalledBox, QEMU],
    ['kernel command line', shape, { metadata: { ...box.metadata, boot: { type: 'kernel', cmdline: 'root=/dev/vda quiet' } } } as unknown as InstalledBox, QEMU],
  ])('a changed %s gives another key (the old state is never loaded)', (_what, otherShape, otherBox, qemu) => {
    expect(warmKey(otherBox, otherShape, qemu)).not.toBe(warmKey(box, shape, QEMU));
  });
});

describe('warm states on disk', () => {
  async function writeState(home: string, key: string, record: object, files = true): Promise<void> {
    const paths = warmPaths(home, key);
    await mkdir(paths.dir, { recursive: true });
    if (files) for (const file of [paths.memory, qemuFiles(paths.dir).overlay, paths.machine.privateKey, paths.machine.hostPublicKey]) await writeFile(file, 'x'.repeat(5000));
    await writeFile(paths.record, JSON.stringify(record));
  }

  const record = (key: string, version = '2026.11.28') => ({
    format: 1,
    key,
    box: { name: 'debian-12', version, sha256: 'a'.repeat(64) },
    shape,
    qemu: QEMU,
    user: 'vm',
    generation: '7f1c3b0e-0a4e-4d55-9c1b-2f0d6f1e8a11',
    createdAt: '2026-11-28T17:00:00.000Z',
  });

  test('only complete states with a valid record are listed, with the disk they take', async () => {
    const home = await tempDir();
    const good = '1'.repeat(32);
    await writeState(home, good, record(good));
    await writeState(home, '2'.repeat(32), record('2'.repeat(32)), false);
    await writeState(home, '3'.repeat(32), { ...record('3'.repeat(32)), shape: 'big' });
    await writeState(home, '4'.repeat(32), record('5'.repeat(32)));
    await mkdir(warmPaths(home, '6'.repeat(32), true).dir, { recursive: true });
    const states = await listWarmStates(home);
    expect(states.map((state) => state.key)).toEqual([good]);
    expect(states[0]?.bytes).toBeGreaterThanOrEqual(2 * 5000);
    expect(states[0]?.box).toEqual({ name: 'debian-12', version: '2026.11.28' });
  });

  test("a box version's removal takes its warm states and leaves the others", async () => {
    const home = await tempDir();
    const [old, current] = ['1'.repeat(32), '2'.repeat(32)];
    await writeState(home, old, record(old, '2026.1.1'));
    await writeState(home, current, record(current));
    expect(await removeWarmStates(home, { name: 'debian-12', version: '2026.1.1' })).toBe(1);
    expect((await listWarmStates(home)).map((state) => state.key)).toEqual([current]);
  });

  test('a state directory that is there but damaged is refused with what is wrong, never replaced under its machines', async () => {
    const home = await tempDir();
    const key = warmKey(box, shape, await qemuVersion());
    await writeState(home, key, record(key), false);
    const error = await ensureWarmState(home, box, shape, qemuDriver('web', home), { reporter: quiet, machine: 'web', bootTimeout: 60 }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toBe(`the warm state ${warmPaths(home, key).dir} is damaged: ${warmPaths(home, key).memory} is missing`);
    expect((error as ConfigError).hint).toContain('warmStart: false');
  });
});

import { mkdir, writeFile } from 'node:fs/promises';
import { describe, expect, test } from 'vitest';
import { inspect } from '../../../src/instance/inspect.js';
import { status } from '../../../src/services/status.js';
import { machinePaths } from '../../../src/store/layout.js';
import { parseVmfile } from '../../../src/vmfile/config.js';
import { tempDir } from '../temp-dir.js';
import { qemuFiles } from '../../../src/driver/qemu/files.js';

const record = (name: string) => ({ name, instanceId: 'vmfile-1', createdAt: '2026-11-28T00:00:00Z', box: { name: 'debian-12', version: '1', sha256: 'a'.repeat(64) }, user: 'vm' });

async function machineWith(dir: string, name: string, state: string | undefined, overlay = true): Promise<void> {
  const paths = machinePaths(dir, name);
  await mkdir(paths.dir, { recursive: true });
  if (state !== undefined) await writeFile(paths.state, state);
  if (overlay) await writeFile(qemuFiles(paths.dir).overlay, '');
}

describe('inspect', () => {
  test.each([
    ['not JSON', '{ "name": ', /machine record .*machine\.json is damaged: not JSON/],
    ['a record of the wrong shape', JSON.stringify({ name: 'web' }), /machine record .*machine\.json is damaged: instanceId: /],
  ])('a machine whose record is %s is broken, with the reason, and does not throw', async (_what, text, reason) => {
    const dir = await tempDir();
    await machineWith(dir, 'web', text);
    const machine = await inspect(dir, 'web');
    expect(machine.status).toBe('broken');
    expect(machine.errors.join('\n')).toMatch(reason);
  });

  test('not created, halted and suspended come from the record and the disk', async () => {
    const dir = await tempDir();
    await machineWith(dir, 'a', undefined, false);
    await machineWith(dir, 'b', JSON.stringify(record('b')));
    await machineWith(dir, 'c', JSON.stringify({ ...record('c'), suspendedAt: '2026-11-28T00:00:00Z' }));
    await machineWith(dir, 'd', JSON.stringify(record('d')), false);
    expect((await inspect(dir, 'a')).status).toBe('not created');
    expect((await inspect(dir, 'b')).status).toBe('halted');
    expect((await inspect(dir, 'c')).status).toBe('suspended');
    // A record without its disk is a creation cut short: created again by vmup.
    expect((await inspect(dir, 'd')).status).toBe('not created');
  });
});

describe('status', () => {
  test('one broken machine is reported with its reason and does not hide the others', async () => {
    const dir = await tempDir();
    const project = parseVmfile({ defaults: { box: 'debian-12' }, machines: { web: {}, db: {}, cache: {} } }, `${dir}/Vmfile.ts`, dir);
    await machineWith(dir, 'web', JSON.stringify(record('web')));
    await machineWith(dir, 'db', 'garbage');
    const entries = await status({ project });
    expect(entries.map((entry) => [entry.machine, entry.status])).toEqual([
      ['web', 'halted'],
      ['db', 'broken'],
      ['cache', 'not created'],
    ]);
    expect(entries[1]?.errors?.[0]).toContain('is damaged');
  });
});

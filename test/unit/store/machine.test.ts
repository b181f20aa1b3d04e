import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { ConfigError } from '../../../src/errors.js';
import { readMachineState, writeMachineState } from '../../../src/store/machine.js';
import { tempDir } from '../temp-dir.js';

const record = (user: string) => ({ name: 'web', instanceId: 'vmfile-1', createdAt: '2026-11-28T00:00:00Z', box: { name: 'debian-12', version: '1', sha256: 'a'.repeat(64) }, user });

describe('machine.json', () => {
  test('a login user that is a POSIX user name is read back', async () => {
    const file = join(await tempDir(), 'machine.json');
    await writeFile(file, JSON.stringify(record('vagrant')));
    expect((await readMachineState(file))?.user).toBe('vagrant');
  });

  test('a user that could add an ssh_config directive makes the record damaged, naming the file', async () => {
    const file = join(await tempDir(), 'machine.json');
    await writeFile(file, JSON.stringify(record('vm\nProxyCommand touch /tmp/owned')));
    await expect(readMachineState(file)).rejects.toBeInstanceOf(ConfigError);
    await expect(readMachineState(file)).rejects.toThrow(file);
  });
});

describe('machine.json and libvirt URIs', () => {
  test("a record is written with its libvirt host alone, never a Vmfile's program options", async () => {
    const file = join(await tempDir(), 'machine.json');
    const provider = { type: 'libvirt' as const, uri: 'qemu+ssh://root@lab/system?keyfile=/k&command=/usr/local/bin/ssh-lab', pool: 'default', domain: 'vmfile-web-1' };
    await writeMachineState(file, { ...record('vm'), provider });
    expect(JSON.parse(await readFile(file, 'utf8')).provider.uri).toBe('qemu+ssh://root@lab/system?keyfile=/k');
  });
});

import { execFileSync } from 'node:child_process';
import { constants } from 'node:fs';
import { mkdir, open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { quickForm, quickSsh } from '../../../src/cli/quick-ssh.js';
import { tempDir } from '../temp-dir.js';

describe("vmssh's quick path", () => {
  test.each([
    [[], {}],
    [['web'], { machine: 'web' }],
    [['-c', 'uptime'], { command: 'uptime' }],
    [['web', '-c', 'true'], { machine: 'web', command: 'true' }],
    [['--command', 'id', 'db'], { machine: 'db', command: 'id' }],
  ])('takes %j', (argv, form) => {
    expect(quickForm(argv)).toEqual(form);
  });

  test.each([[['--help']], [['-c']], [['web', 'db']], [['--', '-L', '80:localhost:80']], [['-c', 'a', '-c', 'b']], [['Web']], [['--vmfile', 'x.ts']]])('leaves %j to the full command', (argv) => {
    expect(quickForm(argv)).toBeUndefined();
  });

  const record = (extra: object = {}) => JSON.stringify({ name: 'default', instanceId: 'i', createdAt: 'now', box: { name: 'b', version: '1', sha256: 'x' }, user: 'vm', sshPort: 40022, ...extra });

  async function project(machines: Record<string, string>): Promise<string> {
    const root = join(await tempDir(), 'p');
    await mkdir(root, { recursive: true });
    await writeFile(join(root, 'Vmfile.ts'), 'export default {}');
    for (const [name, text] of Object.entries(machines)) {
      await mkdir(join(root, '.vmfile', 'machines', name), { recursive: true });
      await writeFile(join(root, '.vmfile', 'machines', name, 'machine.json'), text);
      // A pid file naming this very process: alive, but not QEMU on this overlay.
      await writeFile(join(root, '.vmfile', 'machines', name, 'qemu.pid'), String(process.pid));
    }
    return root;
  }

  test('without a Vmfile, a record, one plain machine or a running QEMU, the full command runs', async () => {
    expect(await quickSsh([], await tempDir())).toBeUndefined();
    expect(await quickSsh([], await project({}))).toBeUndefined();
    // Several machines, and none named: which one is the Vmfile's to say.
    expect(await quickSsh([], await project({ default: record(), web: record({ name: 'web' }) }))).toBeUndefined();
    expect(await quickSsh(['web'], await project({ web: record({ name: 'web' }) }))).toBeUndefined();
  });

  test('a record the full command would judge is left to it', async () => {
    for (const text of ['not json', record({ user: 'root; id' }), record({ provider: { type: 'libvirt' } }), record({ starting: 'boot' }), record({ sshPort: '22' }), record({ name: 'other' })]) {
      expect(await quickSsh([], await project({ default: text }))).toBeUndefined();
    }
  });

  test('a FIFO named machine.json is left to the full command, not waited on', async () => {
    const root = await project({ default: record() });
    const state = join(root, '.vmfile', 'machines', 'default', 'machine.json');
    execFileSync('rm', [state]);
    execFileSync('mkfifo', [state]);
    try {
      expect(await quickSsh(['-c', 'true'], root)).toBeUndefined();
    } finally {
      // Frees a reader that blocked on it (the bug), so the worker can end.
      await (await open(state, constants.O_WRONLY | constants.O_NONBLOCK).catch(() => undefined))?.close();
    }
  }, 5000);
});


/**
 * global-status reads the records of every project on this host, and a project's
 * .vmfile/ is untrusted (a cloned repository may carry one): listing must never run a
 * program a record names, print a name's terminal escapes, or wait on a file that is
 * not a regular file.
 */
import { execFileSync } from 'node:child_process';
import { constants } from 'node:fs';
import { mkdir, open, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { globalStatusLines } from '../../../src/commands/global-status.js';
import { qemuFiles } from '../../../src/driver/qemu/files.js';
import { driverFor } from '../../../src/driver/registry.js';
import { globalStatus } from '../../../src/services/global-status.js';
import { machinePaths, projectIndexFile, projectsIndexDir } from '../../../src/store/layout.js';
import { readMachineState } from '../../../src/store/machine.js';
import { recordProject } from '../../../src/store/projects.js';
import { tempDir } from '../temp-dir.js';

const fifos: string[] = [];

afterEach(async () => {
  // Let a reader that blocked on a FIFO go (a bug being shown), so the worker can end.
  for (const fifo of fifos.splice(0)) {
    const writer = await open(fifo, constants.O_WRONLY | constants.O_NONBLOCK).catch(() => undefined);
    await writer?.close();
  }
});

async function mkfifo(path: string): Promise<void> {
  execFileSync('mkfifo', [path]);
  fifos.push(path);
}

const record = (name: string, extra: object = {}) => ({ name, instanceId: 'vmfile-1', createdAt: '2026-11-28T00:00:00.000Z', box: { name: 'debian-12', version: '1', sha256: 'ab'.repeat(32) }, user: 'vm', ...extra });

async function project(home: string, machines: Record<string, object | 'fifo'>): Promise<string> {
  const dir = await tempDir('vmfile-project-');
  for (const [name, state] of Object.entries(machines)) {
    const paths = machinePaths(dir, name);
    await mkdir(paths.dir, { recursive: true });
    await writeFile(qemuFiles(paths.dir).overlay, '');
    if (state === 'fifo') await mkfifo(paths.state);
    else await writeFile(paths.state, JSON.stringify(state));
  }
  await recordProject(home, { project: dir, vmfile: join(dir, 'Vmfile.ts') });
  return dir;
}

/** A program that leaves a mark when run, and the mark's path. */
async function trap(): Promise<{ program: string; mark: string }> {
  const dir = await tempDir();
  const mark = join(dir, 'ran');
  const program = join(dir, 'evil');
  await writeFile(program, `#!/bin/sh\necho "$@" > ${mark}\nexit 1\n`, { mode: 0o755 });
  return { program, mark };
}

describe('global-status over untrusted records', () => {
  test('a libvirt URI with command= in a record runs nothing (real virsh)', async () => {
    const home = await tempDir();
    const { program, mark } = await trap();
    await project(home, { web: record('web', { provider: { type: 'libvirt', uri: `qemu+ssh://127.0.0.1:1/system?command=${program}`, pool: 'default', domain: 'vmfile-web-1' } }) });

    const { machines } = await globalStatus({ home });

    expect(machines.map((machine) => machine.machine)).toEqual(['web']);
    await expect(stat(mark)).rejects.toThrow(/ENOENT/);
  });

  test.each([
    ['command', 'command=/tmp/x'],
    ['netcat', 'netcat=/tmp/x'],
    ['socket', 'socket=/tmp/x'],
    ['no_verify', 'no_verify=1'],
    ['an encoded name', 'com%6Dand=/tmp/x'],
  ])('a record read with %s keeps only its host and keyfile', async (_what, option) => {
    const file = join(await tempDir(), 'machine.json');
    await writeFile(file, JSON.stringify(record('web', { provider: { type: 'libvirt', uri: `qemu+ssh://me@lab:2222/system?keyfile=/k&${option}`, pool: 'default', domain: 'vmfile-web-1' } })));

    expect((await readMachineState(file))?.provider?.uri).toBe('qemu+ssh://me@lab:2222/system?keyfile=/k');
  });

  test("a record's URI gives the SSH hop (ProxyCommand, ssh2's socket, the tunnel) no program; the Vmfile's for the same host does", async () => {
    const dir = await tempDir();
    const { program } = await trap();
    const file = join(dir, 'machine.json');
    await writeFile(file, JSON.stringify(record('web', { provider: { type: 'libvirt', uri: `qemu+ssh://lab/system?keyfile=/k&command=${program}`, pool: 'default', domain: 'vmfile-web-1' } })));
    const recorded = (await readMachineState(file))?.provider;
    const wanted = (uri: string) => ({ type: 'libvirt' as const, uri, pool: 'default' });

    expect(driverFor('web', dir, { recorded }).sshHop()).toEqual({ local: false, host: 'lab', keyfile: '/k' });
    expect(driverFor('web', dir, { recorded, wanted: wanted('qemu+ssh://lab/system?keyfile=/k&command=/usr/local/bin/ssh-lab') }).sshHop()).toMatchObject({ command: '/usr/local/bin/ssh-lab' });
    // A Vmfile naming another host gives this machine nothing of its options.
    expect(driverFor('web', dir, { recorded, wanted: wanted('qemu+ssh://other/system?command=/usr/local/bin/ssh-lab') }).sshHop()).toEqual({ local: false, host: 'lab', keyfile: '/k' });
  });

  test('a FIFO named machine.json is a broken machine, not a hang', async () => {
    const home = await tempDir();
    await project(home, { web: 'fifo' });

    const { machines } = await globalStatus({ home });

    expect(machines.map((machine) => [machine.machine, machine.status])).toEqual([['web', 'broken']]);
  }, 5000);

  test('a FIFO as a project index entry is pruned, not a hang', async () => {
    const home = await tempDir();
    await mkdir(projectsIndexDir(home), { recursive: true });
    await mkfifo(join(projectsIndexDir(home), 'abc.json'));

    expect(await globalStatus({ home })).toEqual({ machines: [], unreadable: [], pruned: 1 });
  }, 5000);

  test('a FIFO as qemu.pid reads as not running', async () => {
    const home = await tempDir();
    const dir = await project(home, { web: record('web') });
    await mkfifo(qemuFiles(machinePaths(dir, 'web').dir).pidFile);

    const { machines } = await globalStatus({ home });

    expect(machines.map((machine) => [machine.machine, machine.status])).toEqual([['web', 'halted']]);
  }, 5000);

  test('a machine name with terminal escapes is shown escaped; JSON keeps it exact', async () => {
    const home = await tempDir();
    const name = 'x\u001b]2;owned\u0007\u001b[2J';
    const dir = await project(home, { [name]: record(name) });

    const { machines } = await globalStatus({ home });
    const lines = globalStatusLines(machines);

    expect(machines[0]?.machine).toBe(name);
    expect(lines.join('\n')).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
    expect(lines[0]).toContain(`${dir}  x\\x1b]2;owned\\x07\\x1b[2J`);
    expect(projectIndexFile(home, dir)).toMatch(/\.json$/);
  });
});

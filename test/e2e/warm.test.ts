/**
 * Warm starts through the built CLI: the first machine of a shape makes the box's warm
 * state (one generic boot, its memory saved), later machines start from it and become
 * themselves. Two machines from one state must differ in everything that makes a
 * machine itself, starting with the first random bytes they read. A vmfile or QEMU
 * killed while the state is made, or during a warm start, must leave nothing that the
 * next vmup trips on.
 *
 * It runs in a store of its own (the box hard-linked from the shared one), so that the
 * first vmup really makes the state.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { machinePaths, warmStatesDir } from '../../src/store/layout.js';
import { cli, explain, makeProject, processesNaming, type CliOptions, type CliResult } from './cli.js';

const vmfile = (hostname: string) => `import { defineVm } from 'vmfile';
export default defineVm({ box: 'debian-12', cpus: 1, memory: '768MiB', disk: '4GiB', hostname: '${hostname}', warmStart: true });
`;

/** What the test reads first in each machine, in one command. */
const IDENTITY = [
  'head -c 32 /dev/urandom | od -An -tx1 | tr -d " \\n"; echo',
  'cat /etc/machine-id',
  'hostname',
  'cut -d" " -f1,2 /etc/ssh/ssh_host_ed25519_key.pub',
  'cut -d" " -f1,2 ~/.ssh/authorized_keys',
].join('; ');

interface Identity {
  random: string;
  machineId: string;
  hostname: string;
  hostKey: string;
  authorized: string;
}

describe('warm start', () => {
  let home: string;
  let alpha: string;
  let beta: string;
  const run = (project: string, bin: Parameters<typeof cli>[0], args: string[], extra: Partial<CliOptions> = {}): Promise<CliResult> =>
    cli(bin, args, { cwd: project, env: { VMFILE_HOME: home }, ...extra });
  const ok = async (project: string, bin: Parameters<typeof cli>[0], ...args: string[]): Promise<CliResult> => {
    const result = await run(project, bin, args);
    expect(result.code, explain(result)).toBe(0);
    return result;
  };
  const identity = async (project: string): Promise<Identity> => {
    const lines = (await ok(project, 'vmssh', '-c', IDENTITY)).stdout.trim().split('\n');
    const [random = '', machineId = '', hostname = '', hostKey = '', authorized = ''] = lines;
    return { random, machineId, hostname, hostKey, authorized };
  };
  const ownKey = (project: string, file: 'hostPublicKey' | 'publicKey') => readFileSync(machinePaths(project, 'default')[file], 'utf8').split(' ').slice(0, 2).join(' ');
  const partials = async () => (await readdir(warmStatesDir(home)).catch(() => [] as string[])).filter((entry) => entry.endsWith('.partial'));

  beforeAll(async () => {
    home = await mkdtemp(join(tmpdir(), 'vmfile-warm-home-'));
    execFileSync('cp', ['-al', join(inject('vmfileHome'), 'boxes'), join(home, 'boxes')]);
    alpha = await makeProject(vmfile('alpha'));
    beta = await makeProject(vmfile('beta'));
  });

  afterAll(async () => {
    for (const project of [alpha, beta]) {
      await run(project, 'vmfile', ['destroy', '-f']).catch(() => undefined);
      await rm(project, { recursive: true, force: true });
    }
    await rm(home, { recursive: true, force: true });
  });

  it('a vmfile killed while it makes the warm state: the next vmup clears what it left and makes it', async () => {
    let timer: NodeJS.Timeout | undefined;
    const killed = await run(alpha, 'vmup', [], {
      onOutput: (output: string, child: ChildProcess) => {
        // Some seconds into the generic boot: its QEMU runs, nothing is saved yet.
        if (timer === undefined && output.includes('Making a warm state')) timer = setTimeout(() => process.kill(-(child.pid ?? 0), 'SIGKILL'), 8000);
      },
    });
    expect(killed.signal, explain(killed)).toBe('SIGKILL');
    const [partial] = await partials();
    expect(partial, 'a partial warm state is left').toBeDefined();
    const overlay = join(warmStatesDir(home), partial ?? '', 'overlay.qcow2');
    expect(await processesNaming('qemu-system', overlay), 'its generic machine still runs').toHaveLength(1);

    const up = await ok(alpha, 'vmup');
    expect(up.stderr + up.stdout).toContain('Making a warm state of box debian-12');
    expect(up.stderr + up.stdout).toContain('Starting QEMU from the warm state');
    expect(await partials()).toEqual([]);
    expect(await processesNaming('qemu-system', overlay), 'the leftover generic machine was stopped').toEqual([]);
    const list = await ok(alpha, 'vmfile', 'box', 'list');
    expect(list.stdout).toMatch(/warm state: 1 CPUs, 768 ?MiB memory, 4 ?GiB disk, tcg; .* on disk/);
  });

  it('two machines from one warm state differ in RNG output, machine-id, hostname and keys', async () => {
    const up = await ok(beta, 'vmup');
    expect(up.stderr + up.stdout).not.toContain('Making a warm state');
    expect(up.stderr + up.stdout).toContain('Starting QEMU from the warm state');
    const [a, b] = [await identity(alpha), await identity(beta)];
    expect(a.random).toMatch(/^[0-9a-f]{64}$/);
    expect(b.random).toMatch(/^[0-9a-f]{64}$/);
    expect(a.random).not.toBe(b.random);
    expect(a.machineId).toMatch(/^[0-9a-f]{32}$/);
    expect(b.machineId).toMatch(/^[0-9a-f]{32}$/);
    expect(a.machineId).not.toBe(b.machineId);
    expect([a.hostname, b.hostname]).toEqual(['alpha', 'beta']);
    // Each guest holds its own machine's host key and authorizes only its own login key.
    expect(a.hostKey).toBe(ownKey(alpha, 'hostPublicKey'));
    expect(b.hostKey).toBe(ownKey(beta, 'hostPublicKey'));
    expect(a.hostKey).not.toBe(b.hostKey);
    expect(a.authorized).toBe(ownKey(alpha, 'publicKey'));
    expect(b.authorized).toBe(ownKey(beta, 'publicKey'));
    // The warm state's login is gone from the machine's directory once it became itself.
    expect(existsSync(machinePaths(beta, 'default').warmLoginKey)).toBe(false);
  });

  it('a vmfile killed during a warm start: the next vmup finishes it', async () => {
    await ok(beta, 'vmfile', 'destroy', '-f');
    const killed = await run(beta, 'vmup', [], {
      onOutput: (output: string, child: ChildProcess) => {
        if (output.includes('Waiting for SSH')) process.kill(-(child.pid ?? 0), 'SIGKILL');
      },
    });
    expect(killed.signal, explain(killed)).toBe('SIGKILL');
    const up = await ok(beta, 'vmup');
    expect(up.stderr + up.stdout).toContain('did not finish; finishing it');
    const b = await identity(beta);
    expect(b.hostname).toBe('beta');
    expect(b.hostKey).toBe(ownKey(beta, 'hostPublicKey'));
    expect(b.authorized).toBe(ownKey(beta, 'publicKey'));
  });

  it('QEMU killed during a warm start: the next vmup boots the machine from its own disk, and it is itself', async () => {
    await ok(beta, 'vmfile', 'destroy', '-f');
    const pidFile = machinePaths(beta, 'default').pidFile;
    const failed = await run(beta, 'vmup', [], {
      onOutput: (output: string) => {
        if (output.includes('Waiting for SSH') && existsSync(pidFile)) process.kill(Number.parseInt(readFileSync(pidFile, 'utf8'), 10), 'SIGKILL');
      },
    });
    expect(failed.code, explain(failed)).not.toBe(0);
    const up = await ok(beta, 'vmup');
    // The saved memory is loaded at most once: the disk has gone on from it.
    expect(up.stderr + up.stdout).not.toContain('from the warm state');
    const b = await identity(beta);
    expect(b.hostname).toBe('beta');
    expect(b.hostKey).toBe(ownKey(beta, 'hostPublicKey'));
    expect(b.authorized).toBe(ownKey(beta, 'publicKey'));
    expect(b.machineId).toMatch(/^[0-9a-f]{32}$/);
    expect(b.machineId).not.toBe((await identity(alpha)).machineId);
    expect(JSON.parse(await readFile(machinePaths(beta, 'default').state, 'utf8'))).not.toHaveProperty('login');
  });
});

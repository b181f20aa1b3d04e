/**
 * Warm starts through the built CLI: the first machine of a shape makes the box's warm
 * state (one generic boot, its memory saved), later machines start from it and become
 * themselves. Two machines from one state must differ in everything that makes a
 * machine itself, starting with the first random bytes they read, and reach each other
 * on their private network with their own MACs. A vmfile or QEMU killed while the state
 * is made, or during a warm start, must leave nothing that the next vmup trips on.
 *
 * It runs in a store of its own (the box linked or copied from the shared one), so that the
 * first vmup really makes the state.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { machinePaths, warmStatesDir } from '../../src/store/layout.js';
import { macFor, WARM_PRIVATE_MAC } from '../../src/network/address.js';
import { cli, explain, homeWithBoxes, makeProject, processesNaming, type CliOptions, type CliResult } from './cli.js';
import { qemuFiles } from '../../src/driver/qemu/files.js';

const VMFILE = `import { defineVm } from 'vmfile';
export default defineVm({
  defaults: { box: 'debian-12', cpus: 2, memory: '768MiB', disk: '4GiB', folders: [], warmStart: true },
  machines: {
    alpha: { network: { ip: '10.20.0.11' } },
    beta: { network: { ip: '10.20.0.12' } },
  },
});
`;

// The listener says when it listens; the command returns only then, so the connect that follows never races it.
const LISTEN = `rm -f /tmp/listening; nohup python3 -c "import socket; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', 7777)); s.listen(); open('/tmp/listening', 'w').close(); c, _ = s.accept(); c.sendall(b'hello from beta')" </dev/null >/dev/null 2>&1 & for i in $(seq 100); do test -e /tmp/listening && exit 0; sleep 0.2; done; exit 1`;
const CONNECT = (host: string) => `python3 -c "import socket; print(socket.create_connection(('${host}', 7777), timeout=20).recv(100).decode())"`;

/** What the test reads first in each machine, in one command. */
const IDENTITY = [
  'head -c 32 /dev/urandom | od -An -tx1 | tr -d " \\n"; echo',
  'tr -d - </proc/sys/kernel/random/boot_id',
  'cat /etc/machine-id',
  'hostname',
  'cut -d" " -f1,2 /etc/ssh/ssh_host_ed25519_key.pub',
  'cut -d" " -f1,2 ~/.ssh/authorized_keys',
  'cat /sys/class/net/*/address',
].join('; ');

interface Identity {
  random: string;
  bootId: string;
  machineId: string;
  hostname: string;
  hostKey: string;
  authorized: string;
  macs: string[];
}

describe('warm start', () => {
  let home: string;
  let project: string;
  const run = (bin: Parameters<typeof cli>[0], args: string[], extra: Partial<CliOptions> = {}): Promise<CliResult> =>
    cli(bin, args, { cwd: project, env: { VMFILE_HOME: home }, ...extra });
  const ok = async (bin: Parameters<typeof cli>[0], ...args: string[]): Promise<CliResult> => {
    const result = await run(bin, args);
    expect(result.code, explain(result)).toBe(0);
    return result;
  };
  const identity = async (machine: string): Promise<Identity> => {
    const lines = (await ok('vmssh', machine, '-c', IDENTITY)).stdout.trim().split('\n');
    const [random = '', bootId = '', machineId = '', hostname = '', hostKey = '', authorized = '', ...macs] = lines;
    return { random, bootId, machineId, hostname, hostKey, authorized, macs };
  };
  const ownKey = (machine: string, file: 'hostPublicKey' | 'publicKey') => readFileSync(machinePaths(project, machine)[file], 'utf8').split(' ').slice(0, 2).join(' ');
  const partials = async () => (await readdir(warmStatesDir(home)).catch(() => [] as string[])).filter((entry) => entry.endsWith('.partial'));
  const count = (text: string, part: string) => text.split(part).length - 1;

  beforeAll(async () => {
    home = await homeWithBoxes('vmfile-warm-home-');
    project = await makeProject(VMFILE);
  });

  afterAll(async () => {
    await run('vmfile', ['destroy', '-f']).catch(() => undefined);
    await rm(project, { recursive: true, force: true });
    await rm(home, { recursive: true, force: true });
  });

  it('a vmfile killed while it makes the warm state: the next vmup clears what it left, makes it once, and starts both machines from it', async () => {
    let timer: NodeJS.Timeout | undefined;
    const killed = await run('vmup', [], {
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

    // Both machines have one shape: one makes the state, the other waits for it.
    const up = await ok('vmup');
    const output = up.stderr + up.stdout;
    expect(count(output, 'Making a warm state of box debian-12'), output).toBe(2); // its start and its "done" line
    expect(output).toMatch(/==> alpha: Starting QEMU from the warm state.*done in/);
    expect(output).toMatch(/==> beta: Starting QEMU from the warm state.*done in/);
    expect(await partials()).toEqual([]);
    expect(await processesNaming('qemu-system', overlay), 'the leftover generic machine was stopped').toEqual([]);
    const list = await ok('vmfile', 'box', 'list');
    expect(list.stdout).toMatch(/warm state: 2 CPUs, 768 ?MiB memory, 4 ?GiB disk, tcg; .* on disk/);
  });

  it('two machines from one warm state differ in RNG output, boot ID, machine-id, hostname, keys and MAC, and reach each other', async () => {
    const [a, b] = [await identity('alpha'), await identity('beta')];
    expect(a.random).toMatch(/^[0-9a-f]{64}$/);
    expect(b.random).toMatch(/^[0-9a-f]{64}$/);
    expect(a.random).not.toBe(b.random);
    // Each has a boot ID of its own, and neither is the one the state's memory was saved with.
    const states = (await readdir(warmStatesDir(home))).filter((entry) => /^[0-9a-f]{32}$/.test(entry));
    const saved = states.map((key) => (JSON.parse(readFileSync(join(warmStatesDir(home), key, 'warm.json'), 'utf8')) as { bootId?: { value: string } }).bootId?.value);
    expect(saved).toHaveLength(1);
    expect(saved[0]).toMatch(/^[0-9a-f]{32}$/);
    expect(a.bootId).toMatch(/^[0-9a-f]{32}$/);
    expect(b.bootId).toMatch(/^[0-9a-f]{32}$/);
    expect(new Set([a.bootId, b.bootId, saved[0]]).size).toBe(3);
    // journald took on the new IDs: what is logged now is in this boot's journal.
    const journal = await ok('vmssh', 'beta', '-c', 'while systemctl list-jobs --no-legend | grep -q journald; do sleep 0.1; done; logger -t vmfile-e2e "logged in beta"; for i in $(seq 50); do sudo journalctl -b -t vmfile-e2e -o cat | grep -q . && break; sleep 0.1; done; sudo journalctl -b -t vmfile-e2e --no-pager -o cat');
    expect(journal.stdout).toContain('logged in beta');
    expect(a.machineId).toMatch(/^[0-9a-f]{32}$/);
    expect(b.machineId).toMatch(/^[0-9a-f]{32}$/);
    expect(a.machineId).not.toBe(b.machineId);
    expect([a.hostname, b.hostname]).toEqual(['alpha', 'beta']);
    // Each guest holds its own machine's host key and authorizes only its own login key.
    expect(a.hostKey).toBe(ownKey('alpha', 'hostPublicKey'));
    expect(b.hostKey).toBe(ownKey('beta', 'hostPublicKey'));
    expect(a.hostKey).not.toBe(b.hostKey);
    expect(a.authorized).toBe(ownKey('alpha', 'publicKey'));
    expect(b.authorized).toBe(ownKey('beta', 'publicKey'));
    // The private NIC carries the machine's own MAC, not the one saved with the state.
    expect(a.macs).toContain(macFor(project, 'alpha', 1));
    expect(b.macs).toContain(macFor(project, 'beta', 1));
    expect([...a.macs, ...b.macs]).not.toContain(WARM_PRIVATE_MAC);
    await ok('vmssh', 'beta', '-c', LISTEN);
    expect((await ok('vmssh', 'alpha', '-c', CONNECT('beta'))).stdout.trim()).toBe('hello from beta');
    // The state's login is gone from the machine's directory once it became itself.
    expect(existsSync(machinePaths(project, 'beta').warmLoginKey)).toBe(false);
  });

  it('a vmfile killed during a warm start: the next vmup finishes it', async () => {
    await ok('vmfile', 'destroy', '-f', 'beta');
    const killed = await run('vmup', ['beta'], {
      onOutput: (output: string, child: ChildProcess) => {
        if (output.includes('Waiting for SSH')) process.kill(-(child.pid ?? 0), 'SIGKILL');
      },
    });
    expect(killed.signal, explain(killed)).toBe('SIGKILL');
    const up = await ok('vmup', 'beta');
    expect(up.stderr + up.stdout).toContain('did not finish; finishing it');
    const b = await identity('beta');
    expect(b.hostname).toBe('beta');
    expect(b.hostKey).toBe(ownKey('beta', 'hostPublicKey'));
    expect(b.authorized).toBe(ownKey('beta', 'publicKey'));
  });

  it('a vmfile killed as QEMU loads the warm state (the guest paused, never run): the next vmup starts it again and it is itself', async () => {
    await ok('vmfile', 'destroy', '-f', 'beta');
    const killed = await run('vmup', ['beta'], {
      onOutput: (output: string, child: ChildProcess) => {
        if (output.includes('Starting QEMU from the warm state')) process.kill(-(child.pid ?? 0), 'SIGKILL');
      },
    });
    expect(killed.signal, explain(killed)).toBe('SIGKILL');
    const started = Date.now();
    const up = await ok('vmup', 'beta');
    // Whatever phase the kill came in: started again from the state, or its start finished.
    expect(up.stderr + up.stdout).toMatch(/did not finish; finishing it|Starting QEMU from the warm state/);
    expect(up.stderr + up.stdout).not.toContain('is already running');
    const b = await identity('beta');
    expect(b.hostname).toBe('beta');
    expect(b.hostKey).toBe(ownKey('beta', 'hostPublicKey'));
    expect(b.authorized).toBe(ownKey('beta', 'publicKey'));
    expect(Date.now() - started).toBeLessThan(120_000);
  });

  it('QEMU killed during a warm start: the next vmup boots the machine from its own disk, and it is itself', async () => {
    await ok('vmfile', 'destroy', '-f', 'beta');
    const pidFile = qemuFiles(machinePaths(project, 'beta').dir).pidFile;
    const failed = await run('vmup', ['beta'], {
      onOutput: (output: string) => {
        if (output.includes('Waiting for SSH') && existsSync(pidFile)) process.kill(Number.parseInt(readFileSync(pidFile, 'utf8'), 10), 'SIGKILL');
      },
    });
    expect(failed.code, explain(failed)).not.toBe(0);
    const up = await ok('vmup', 'beta');
    // The saved memory is loaded at most once: the disk has gone on from it.
    expect(up.stderr + up.stdout).not.toContain('from the warm state');
    const b = await identity('beta');
    expect(b.hostname).toBe('beta');
    expect(b.hostKey).toBe(ownKey('beta', 'hostPublicKey'));
    expect(b.authorized).toBe(ownKey('beta', 'publicKey'));
    expect(b.machineId).toMatch(/^[0-9a-f]{32}$/);
    expect(b.machineId).not.toBe((await identity('alpha')).machineId);
    expect(JSON.parse(await readFile(machinePaths(project, 'beta').state, 'utf8'))).not.toHaveProperty('login');
    await ok('vmssh', 'beta', '-c', LISTEN);
    expect((await ok('vmssh', 'alpha', '-c', CONNECT('10.20.0.12'))).stdout.trim()).toBe('hello from beta');
  });
});

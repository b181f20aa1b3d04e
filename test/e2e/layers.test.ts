/**
 * Provisioning layers through the built CLI (lifecycle/layers.ts): a Vmfile's first once
 * steps are kept as warm states over the box's, so a second project with the same steps
 * starts from them and runs only the rest. The step's side effect happens once across
 * both projects, yet each machine is itself; a changed script makes its layer again and
 * keeps the ones before it; --no-cache runs every step on the machine; a vmfile or a QEMU
 * killed while a layer is made leaves nothing that the next vmup trips on; cache prune
 * removes only what no machine stands on.
 *
 * It runs in a vmfile home of its own, so that what prune removes is decided by its own
 * machines alone: another file's leftovers (a machine on a libvirt host that is gone, say)
 * would rightly make prune remove nothing. It keeps two machines on its layers while it
 * prunes, so those stay.
 */
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { warmStatesDir } from '../../src/store/layout.js';
import { WARM_SHAPE, cli as cliIn, explain, homeWithBoxes, makeProject, processesNaming, type CliOptions } from './cli.js';

/** In the first step's text, so that this run's layers are its own and not an earlier run's. */
const RUN = `${process.pid}-${Date.now()}`;
const vmfile = (hostname: string, extra = '') => `import { defineVm } from 'vmfile';
export default defineVm({
  box: 'debian-12',
  ${WARM_SHAPE},
  folders: [],
  hostname: '${hostname}',
  provision: [
    { name: 'token', shell: 'head -c 32 /dev/urandom | sha256sum | cut -c1-64 > /etc/layer-token; echo ran >> /var/tmp/token-runs # run ${RUN}' },
    { name: 'setup', script: 'setup.sh' },${extra}
    { name: 'where', shell: 'hostname > /etc/provisioned-on', cache: false },
    { name: 'every', shell: 'echo boot >> /var/tmp/boots', run: 'always' },
  ],
});
`;
const SETUP = (version: string) => `#!/bin/sh\necho ${version} > /etc/setup-version\n`;
/** What the test reads in each machine, in one command. */
const FACTS = 'cat /etc/layer-token; wc -l < /var/tmp/token-runs; cat /etc/setup-version /etc/provisioned-on /etc/machine-id; wc -l < /var/tmp/boots; hostname';

interface Facts {
  token: string;
  tokenRuns: string;
  setup: string;
  provisionedOn: string;
  machineId: string;
  boots: string;
  hostname: string;
}

interface CacheJson {
  entries: { key: string; layer?: { parent: string; step: { name: string } }; usedBy: string[] }[];
  unknown: string[];
  removed?: { key: string; layer?: { step: { name: string } } }[];
}

describe('provisioning layers', () => {
  let home: string;
  const cli = (bin: Parameters<typeof cliIn>[0], args: string[], options: CliOptions) => cliIn(bin, args, { ...options, env: { VMFILE_HOME: home, ...options.env } });
  const projects: string[] = [];
  const make = async (hostname: string, setup = 'v1', extra = '') => {
    const dir = await makeProject(vmfile(hostname, extra), { 'setup.sh': SETUP(setup) });
    projects.push(dir);
    return dir;
  };
  const ok = async (dir: string, bin: Parameters<typeof cli>[0], args: string[], options: Partial<CliOptions> = {}) => {
    const result = await cli(bin, args, { cwd: dir, ...options });
    expect(result.code, explain(result)).toBe(0);
    return result;
  };
  const facts = async (dir: string): Promise<Facts> => {
    const [token = '', tokenRuns = '', setup = '', provisionedOn = '', machineId = '', boots = '', hostname = ''] = (await ok(dir, 'vmssh', ['-c', FACTS])).stdout.trim().split('\n');
    return { token, tokenRuns, setup, provisionedOn, machineId, boots, hostname };
  };
  const cache = async (dir: string, ...args: string[]) => JSON.parse((await ok(dir, 'vmfile', ['cache', ...args, '--json'])).stdout) as CacheJson;
  let alpha: string;
  let beta: string;
  let alphaFacts: Facts;

  beforeAll(async () => {
    home = await homeWithBoxes('vmfile-layers-home-');
  });

  afterAll(async () => {
    for (const dir of projects) {
      await cli('vmfile', ['destroy', '-f'], { cwd: dir });
      await rm(dir, { recursive: true, force: true });
    }
    await rm(home, { recursive: true, force: true });
  });

  it('the first project caches its leading once steps as layers and runs the rest on the machine', async () => {
    alpha = await make('alpha');
    const up = await ok(alpha, 'vmup', []);
    expect(up.stderr).toContain('Caching step "token" as a provisioning layer');
    expect(up.stderr).toContain('Caching step "setup" as a provisioning layer');
    expect(up.stderr).toContain('over the provisioning layer of step "setup"');
    expect(up.stderr).not.toContain('Caching step "where"');
    expect(up.stderr).toContain('Provisioning step "where": done');
    alphaFacts = await facts(alpha);
    expect(alphaFacts).toMatchObject({ tokenRuns: '1', setup: 'v1', provisionedOn: 'alpha', boots: '1', hostname: 'alpha' });
    expect(alphaFacts.token).toMatch(/^[0-9a-f]{64}$/);
  });

  it('a second project starts from the layers: the step ran once across both, and the machine is itself', async () => {
    beta = await make('beta');
    const up = await ok(beta, 'vmup', []);
    expect(up.stderr).not.toContain('Caching step');
    expect(up.stderr).not.toContain('Provisioning step "token"');
    expect(up.stderr).not.toContain('Provisioning step "setup"');
    expect(up.stderr).toContain('over the provisioning layer of step "setup"');
    const betaFacts = await facts(beta);
    expect(betaFacts).toMatchObject({ token: alphaFacts.token, tokenRuns: '1', setup: 'v1', provisionedOn: 'beta', boots: '1', hostname: 'beta' });
    expect(betaFacts.machineId).not.toBe(alphaFacts.machineId);
    // The layered steps are recorded as done, with the hashes they have here.
    const again = await ok(beta, 'vmup', []);
    expect(again.stderr).toContain('already running');
    expect(again.stderr).not.toContain('has changed since it ran');

    const listing = await cache(beta, 'list');
    const layer = (name: string) => listing.entries.find((entry) => entry.layer?.step.name === name && entry.usedBy.some((user) => user.includes(beta)));
    for (const name of ['token', 'setup']) {
      expect(layer(name)?.usedBy).toEqual(expect.arrayContaining([expect.stringContaining(alpha), expect.stringContaining(beta)]));
    }
    expect(layer('setup')?.layer?.parent).toBe(layer('token')?.key);
  });

  it("a changed script makes its layer again, over the layers before it", async () => {
    const gamma = await make('gamma', 'v2');
    const up = await ok(gamma, 'vmup', []);
    expect(up.stderr).not.toContain('Caching step "token"');
    expect(up.stderr).toContain('Caching step "setup" as a provisioning layer');
    expect(await facts(gamma)).toMatchObject({ token: alphaFacts.token, tokenRuns: '1', setup: 'v2', provisionedOn: 'gamma' });
  });

  it('vmup --no-cache runs every step on the machine itself', async () => {
    const delta = await make('delta');
    const up = await ok(delta, 'vmup', ['--no-cache']);
    expect(up.stderr).not.toContain('provisioning layer');
    expect(up.stderr).toContain('Provisioning step "token": done');
    const deltaFacts = await facts(delta);
    expect(deltaFacts.token).not.toBe(alphaFacts.token);
    expect(deltaFacts).toMatchObject({ tokenRuns: '1', setup: 'v1', provisionedOn: 'delta' });
  });

  it('a vmfile killed while it makes a layer: the next vmup clears what it left and makes it once', async () => {
    const slow = `\n    { name: 'slow', shell: 'echo started-${process.pid}; sleep 8; echo slow > /etc/slow' },`;
    const epsilon = await make('epsilon', 'v1', slow);
    let killed = false;
    const first = await cli('vmup', [], {
      cwd: epsilon,
      onOutput: (output, child) => {
        if (!killed && output.includes(`started-${process.pid}`)) {
          killed = true;
          process.kill(-(child.pid ?? 0), 'SIGKILL');
        }
      },
    });
    expect(first.signal, explain(first)).toBe('SIGKILL');
    const partial = (await readdir(warmStatesDir(home))).filter((name) => name.endsWith('.partial'));
    expect(partial).toHaveLength(1);
    const leftover = join(warmStatesDir(home), partial[0] ?? '');

    const again = await ok(epsilon, 'vmup', []);
    expect(again.stderr.match(/Caching step "slow" as a provisioning layer: done/g)).toHaveLength(1);
    expect((await readdir(warmStatesDir(home))).filter((name) => name.endsWith('.partial'))).toEqual([]);
    expect(await processesNaming(leftover)).toEqual([]);
    expect((await ok(epsilon, 'vmssh', ['-c', 'cat /etc/slow /etc/provisioned-on'])).stdout.trim()).toBe('slow\nepsilon');
  });

  it("QEMU killed while a layer is made: vmup fails saying so, leaves nothing half-made, and the next vmup makes it", async () => {
    const slow = `\n    { name: 'slow', shell: 'echo qemu-${process.pid}; sleep 8; echo slow > /etc/slow' },`;
    const zeta = await make('zeta', 'v1', slow);
    let killed = false;
    const first = await cli('vmup', [], {
      cwd: zeta,
      onOutput: (output) => {
        if (killed || !output.includes(`qemu-${process.pid}`)) return;
        killed = true;
        void processesNaming('qemu-system', '.partial/').then((pids) => pids.forEach((pid) => process.kill(pid, 'SIGKILL')));
      },
    });
    expect(first.code, explain(first)).toBe(1);
    expect(first.stderr).toMatch(/Caching step "slow" as a provisioning layer: failed/);
    expect(first.stderr).not.toContain('internal error');
    expect((await readdir(warmStatesDir(home))).filter((name) => name.endsWith('.partial'))).toEqual([]);
    expect(await processesNaming('qemu-system', '.partial/')).toEqual([]);
    const again = await ok(zeta, 'vmup', []);
    expect(again.stderr.match(/Caching step "slow" as a provisioning layer: done/g)).toHaveLength(1);
    expect((await ok(zeta, 'vmssh', ['-c', 'cat /etc/slow'])).stdout.trim()).toBe('slow');
  });

  it('cache prune removes the layers no machine stands on and keeps those under machines', async () => {
    const [, , gamma, delta, epsilon, zeta] = projects as [string, string, string, string, string, string];
    for (const dir of [gamma, delta, epsilon, zeta]) await ok(dir, 'vmfile', ['destroy', '-f']);
    const dry = await cache(alpha, 'prune', '--dry-run');
    const names = (dry.removed ?? []).map((entry) => entry.layer?.step.name);
    expect(dry.unknown, 'machines prune cannot read').toEqual([]);
    expect(names, JSON.stringify(dry.entries.map((entry) => [entry.layer?.step.name, entry.usedBy]))).toEqual(expect.arrayContaining(['setup', 'slow']));
    const pruned = await cache(alpha, 'prune');
    expect(pruned.removed?.map((entry) => entry.key).sort()).toEqual(dry.removed?.map((entry) => entry.key).sort());
    const after = await cache(alpha, 'list');
    expect(after.entries.every((entry) => entry.usedBy.length > 0)).toBe(true);
    const ours = after.entries.filter((entry) => entry.layer !== undefined && entry.usedBy.some((user) => user.includes(alpha) || user.includes(beta)));
    expect(ours.map((entry) => entry.layer?.step.name).sort()).toEqual(['setup', 'token']);
    const left = new Set(after.entries.map((entry) => entry.key));
    expect((dry.removed ?? []).filter((entry) => left.has(entry.key))).toEqual([]);
    // QEMU opens the machines' whole disk chains again: beta suspends and resumes.
    await ok(beta, 'vmfile', ['suspend']);
    expect((await ok(beta, 'vmup', [])).stderr).toContain('Resuming from saved memory');
    expect((await facts(beta)).setup).toBe('v1');
  });
});

/**
 * The libvirt provider through the built CLI, against a libvirt the test starts itself
 * (libvirt-host.ts), reached as qemu:///system and as qemu+ssh:// through a real sshd
 * on a loopback port. The same commands as with the built-in provider: up with a
 * provisioning step, vmssh, snapshot save and restore, halt, up again, destroy; and
 * what an unreachable host or a missing pool says.
 */
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, explain, makeProject } from './cli.js';
import { startLibvirtHost, virsh, type LibvirtHostFixture } from './libvirt-host.js';

interface StatusJson {
  status: string;
  pid?: number;
  libvirt?: { uri: string; host: string; domain: string };
}

const vmfile = (uri: string, pool: string) => `import { defineVm } from 'vmfile';
export default defineVm({
  box: 'debian-12', cpus: 2, memory: '1GiB', disk: '4GiB', folders: [],
  provider: { type: 'libvirt', uri: ${JSON.stringify(uri)}, pool: ${JSON.stringify(pool)} },
  provision: [{ name: 'mark', shell: 'echo provisioned > /home/vm/mark' }],
});
`;

describe('the libvirt provider', () => {
  let host: LibvirtHostFixture;
  beforeAll(async () => {
    host = await startLibvirtHost();
  });
  afterAll(async () => {
    await host?.stop();
  });

  async function lifecycle(uri: string, label: string, options: { rebootAfterHalt: boolean }): Promise<void> {
    const project = await makeProject(vmfile(uri, host.pool));
    const run = (bin: Parameters<typeof cli>[0], ...args: string[]) => cli(bin, args, { cwd: project });
    const ok = async (bin: Parameters<typeof cli>[0], ...args: string[]) => {
      const result = await run(bin, ...args);
      expect(result.code, explain(result)).toBe(0);
      return result;
    };
    const guest = async (command: string) => (await ok('vmssh', '-c', command)).stdout.trim();
    const status = async () => (JSON.parse((await ok('vmfile', 'status', '--json')).stdout) as StatusJson[])[0];
    try {
      await ok('vmup');
      const up = await status();
      expect(up).toMatchObject({ status: 'running', libvirt: { uri, host: label } });
      const domain = up?.libvirt?.domain ?? '';
      expect(domain).toMatch(/^vmfile-default-[0-9a-f]{12}$/);
      // The machine is a domain of that libvirt, running there.
      expect((await virsh(host.localUri, 'domstate', domain)).trim()).toBe('running');
      expect(await guest('cat /home/vm/mark')).toBe('provisioned');
      expect(await guest('hostname')).toMatch(/^vmfile-e2e-/i);

      await ok('vmfile', 'snapshot', 'save', 'clean');
      await guest('echo later > /home/vm/after');
      await ok('vmfile', 'snapshot', 'restore', 'clean');
      expect(await guest('test -e /home/vm/after && echo present || echo gone')).toBe('gone');
      expect((await virsh(host.localUri, 'snapshot-list', domain, '--name')).trim()).toBe('clean');

      const halt = await ok('vmhalt');
      expect(halt.stderr).toContain('guest powered off');
      expect((await status())?.status).toBe('halted');
      expect((await virsh(host.localUri, 'domstate', domain)).trim()).toBe('shut off');
      if (options.rebootAfterHalt) {
        await ok('vmup');
        expect(await guest('cat /home/vm/mark')).toBe('provisioned');
      }

      const destroyed = await ok('vmfile', 'destroy', '-f');
      expect(destroyed.stderr).toContain('destroyed with its 1 snapshot');
      expect(await virsh(host.localUri, 'dominfo', domain).then(() => 'defined', () => 'gone')).toBe('gone');
      // The machine's volumes are gone; the box's stay for the next machine on that host.
      const volumes = (await virsh(host.localUri, 'vol-list', host.pool)).split('\n').map((line) => line.trim().split(/\s+/)[0] ?? '').filter((name) => name !== '');
      expect(volumes.filter((name) => name.startsWith(domain))).toEqual([]);
      expect(volumes.some((name) => name.startsWith('vmfile-box-') && name.endsWith('.qcow2'))).toBe(true);
    } finally {
      await run('vmfile', 'destroy', '-f');
      await rm(project, { recursive: true, force: true });
    }
  }

  it('qemu:///system: up with a step, ssh, snapshot save and restore, halt, up, destroy', async () => {
    await lifecycle(host.localUri, 'this host', { rebootAfterHalt: true });
  });

  it('qemu+ssh:// through a real sshd: the same, with the guest reached through that host', async () => {
    await lifecycle(host.remoteUri, host.remoteLabel, { rebootAfterHalt: false });
  });

  it('a host that cannot be reached, and a pool that does not exist, are said plainly and leave nothing behind', async () => {
    const unreachable = await makeProject(vmfile('qemu+ssh://root@127.0.0.1:1/system', host.pool));
    const nopool = await makeProject(vmfile(host.localUri, 'no-such-pool'));
    try {
      const down = await cli('vmup', [], { cwd: unreachable });
      expect(down.code, explain(down)).toBe(1);
      expect(down.stderr).toContain('libvirt host qemu+ssh://root@127.0.0.1:1/system cannot be reached');
      expect(down.stderr).toContain('hint: check that the host is up');
      const missing = await cli('vmup', [], { cwd: nopool });
      expect(missing.code, explain(missing)).toBe(1);
      expect(missing.stderr).toContain(`libvirt host ${host.localUri} has no storage pool "no-such-pool"`);
      expect(missing.stderr).toContain('provider.pool');
      for (const project of [unreachable, nopool]) {
        const status = JSON.parse((await cli('vmfile', ['status', '--json'], { cwd: project })).stdout) as StatusJson[];
        expect(status[0]?.status).toBe('not created');
      }
    } finally {
      await rm(unreachable, { recursive: true, force: true });
      await rm(nopool, { recursive: true, force: true });
    }
  });
});

/**
 * The libvirt provider through the built CLI, against a libvirt the test starts itself
 * in a network namespace of its own (libvirt-host.ts), reached as qemu:///system and as
 * qemu+ssh:// through a real sshd on a loopback port: two "hosts". A three-machine
 * Vmfile is placed over them by its placement rule; the two machines on one host share
 * a private network. They go through the same commands as with the built-in provider:
 * up with a provisioning step, vmssh, snapshot save and restore, halt, package (from
 * the other host), up again, destroy. Then what an unreachable host, a missing pool, and a private network over
 * two hosts say.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, explain, freePort, makeProject } from './cli.js';
import { fetchIn, startLibvirtHost, virsh, type LibvirtHostFixture } from './libvirt-host.js';

interface StatusJson {
  status: string;
  ports?: { hostIp: string; host: number; guest: number }[];
  pid?: number;
  where?: { driver: string; uri?: string; host: string; name?: string };
  errors?: string[];
}

const vmfile = (uri: string, pool: string) => `import { defineVm } from 'vmfile';
export default defineVm({
  box: 'debian-12', cpus: 2, memory: '1GiB', disk: '4GiB', folders: [],
  provider: { type: 'libvirt', uri: ${JSON.stringify(uri)}, pool: ${JSON.stringify(pool)} },
});
`;

/**
 * Three machines placed over two "hosts" (the same libvirt, reached locally and over
 * SSH): near and peer on the first, on a private network; far on the second, serving
 * its home directory on a forwarded port, which must reach this host.
 */
const placed = (hosts: readonly string[], pool: string, port = 1) => `import { defineVm } from 'vmfile';
export default defineVm({
  defaults: {
    box: 'debian-12', cpus: 2, memory: '1GiB', disk: '4GiB', folders: [],
    provider: { type: 'libvirt', hosts: ${JSON.stringify(hosts)}, placement: 'spread', pool: ${JSON.stringify(pool)} },
    provision: [{ name: 'mark', shell: 'echo provisioned > /home/vm/mark' }],
  },
  machines: {
    near: { network: { ip: '10.30.0.2' } },
    far: {
      ports: [{ guest: 8000, host: ${port} }],
      provision: [
        { name: 'mark', shell: 'echo provisioned > /home/vm/mark' },
        { name: 'serve', shell: 'setsid python3 -m http.server 8000 --directory /home/vm </dev/null >/dev/null 2>&1 &' },
      ],
    },
    peer: { network: { ip: '10.30.0.3' } },
  },
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

  it('three machines placed over qemu:///system and qemu+ssh://, two on a private network: up with a step, ssh, snapshot save and restore, halt, up, destroy', async () => {
    const port = await freePort();
    const project = await makeProject(placed([host.localUri, host.remoteUri], host.pool, port));
    const run = (bin: Parameters<typeof cli>[0], ...args: string[]) => cli(bin, args, { cwd: project, netns: host.netns });
    const ok = async (bin: Parameters<typeof cli>[0], ...args: string[]) => {
      const result = await run(bin, ...args);
      expect(result.code, explain(result)).toBe(0);
      return result;
    };
    const guest = async (machine: string, command: string) => (await ok('vmssh', machine, '-c', command)).stdout.trim();
    const statuses = async () => Object.fromEntries((JSON.parse((await ok('vmfile', 'status', '--json')).stdout) as (StatusJson & { machine: string })[]).map((entry) => [entry.machine, entry]));
    const domainState = async (domain: string) => (await virsh(host.localUri, 'domstate', domain)).trim();
    const networks = async () => (await virsh(host.localUri, 'net-list', '--all', '--name')).split('\n').map((line) => line.trim()).filter((name) => name.startsWith('vmfile-net-'));
    // Over the private network, by the peer's name: its sshd's greeting.
    const overPrivateNetwork = `python3 -c "import socket; print(socket.create_connection(('peer', 22), timeout=20).recv(7).decode())"`;
    try {
      await ok('vmup');
      const up = await statuses();
      // The placement rule: machines go to the hosts in turn.
      expect(up['near']).toMatchObject({ status: 'running', where: { driver: 'libvirt', uri: host.localUri, host: 'this host' } });
      expect(up['far']).toMatchObject({ status: 'running', where: { driver: 'libvirt', uri: host.remoteUri, host: host.remoteLabel } });
      expect(up['peer']).toMatchObject({ status: 'running', where: { driver: 'libvirt', uri: host.localUri, host: 'this host' } });
      const machines = ['near', 'far', 'peer'];
      const domains = machines.map((name) => up[name]?.where?.name ?? '');
      for (const [index, name] of machines.entries()) {
        expect(domains[index]).toMatch(new RegExp(`^vmfile-${name}-[0-9a-f]{12}$`));
        expect(await domainState(domains[index] ?? '')).toBe('running');
        expect(await guest(name, 'cat /home/vm/mark; hostname')).toBe(`provisioned\n${name}`);
      }
      // The far machine's forwarded port listens on this host, through vmfile's tunnel to the other one.
      expect(up['far']?.ports).toContainEqual(expect.objectContaining({ hostIp: '127.0.0.1', host: port, guest: 8000 }));
      expect(await fetchIn(host.netns, `http://127.0.0.1:${port}/mark`)).toBe('provisioned\n');
      // near and peer share one libvirt network of the project's on their host.
      expect(await networks()).toHaveLength(1);
      expect(await guest('near', overPrivateNetwork)).toBe('SSH-2.0');

      for (const name of ['near', 'far']) {
        await ok('vmfile', 'snapshot', 'save', 'clean', '-m', name);
        await guest(name, 'echo later > /home/vm/after');
        await ok('vmfile', 'snapshot', 'restore', 'clean', '-m', name);
        expect(await guest(name, 'test -e /home/vm/after && echo present || echo gone')).toBe('gone');
      }
      for (const domain of domains.slice(0, 2)) expect((await virsh(host.localUri, 'snapshot-list', domain, '--name')).trim()).toBe('clean');
      const stamp = `remote-disk-${randomUUID()}`;
      await guest('far', `echo ${stamp} > /home/vm/stamp && sync`);

      const halt = await ok('vmhalt');
      expect(halt.stderr).toContain('guest powered off');
      expect(Object.values(await statuses()).map((entry) => entry.status)).toEqual(['halted', 'halted', 'halted']);
      // The tunnel ended with the machine.
      await expect(fetchIn(host.netns, `http://127.0.0.1:${port}/mark`)).rejects.toThrow();
      for (const domain of domains) expect(await domainState(domain)).toBe('shut off');
      // Packaged from the other host: its disk flattened there and brought here, with what the machine wrote.
      const box = join(project, 'far.box');
      const packaged = await ok('vmfile', 'package', 'far', '-o', box, '--name', 'far', '--version', '1.0');
      expect(packaged.stdout).toContain('/etc/ssh/ssh_host_ed25519_key');
      expect(execFileSync('tar', ['-tf', box], { encoding: 'utf8' }).trim().split('\n')).toEqual(['box.json', 'disk.qcow2', 'kernel', 'initrd']);
      execFileSync('tar', ['-xf', box, '-C', project, 'disk.qcow2']);
      execFileSync('qemu-img', ['convert', '-O', 'raw', join(project, 'disk.qcow2'), join(project, 'disk.raw')]);
      expect(spawnSync('grep', ['-c', '-a', '-F', stamp, join(project, 'disk.raw')], { encoding: 'utf8' }).stdout.trim()).not.toBe('0');
      await rm(join(project, 'disk.raw'));
      // The flattened copy there is gone again.
      expect(await virsh(host.localUri, 'vol-list', host.pool)).not.toContain('-export.raw');
      // With its host off the network, the far machine is unreachable, not halted; vmup says so and changes nothing.
      await host.stopSsh();
      const away = await statuses();
      expect(away['far']?.status).toBe('unreachable');
      expect(away['far']?.errors?.join()).toContain(`libvirt host ${host.remoteUri} cannot be reached`);
      expect(away['near']?.status).toBe('halted');
      const refused = await run('vmup', 'far');
      expect(refused.code, explain(refused)).toBe(1);
      expect(refused.stderr).toContain(`machine "far" is on a host that does not answer (libvirt host ${host.remoteUri} cannot be reached`);
      expect(refused.stderr).toContain('once its host answers again');
      await host.startSsh();
      // Up again: the machine comes back on the host it was created on (the remote one is
      // enough; a second boot here would only cost CI time).
      await ok('vmup', 'far');
      const again = await statuses();
      expect(again['far']?.where?.host).toBe(host.remoteLabel);
      expect(await guest('far', 'cat /home/vm/mark')).toBe('provisioned');
      // The network outlives halts: it goes only with the last machine on it.
      expect(await networks()).toHaveLength(1);

      const destroyed = await ok('vmfile', 'destroy', '-f');
      expect(destroyed.stderr).toContain('destroyed with its 1 snapshot');
      const volumes = (await virsh(host.localUri, 'vol-list', host.pool)).split('\n').map((line) => line.trim().split(/\s+/)[0] ?? '').filter((name) => name !== '');
      for (const domain of domains) {
        expect(await virsh(host.localUri, 'dominfo', domain).then(() => 'defined', () => 'gone')).toBe('gone');
        // The machine's volumes are gone; the box's stay for the next machine on that host.
        expect(volumes.filter((name) => name.startsWith(domain))).toEqual([]);
      }
      expect(volumes.some((name) => name.startsWith('vmfile-box-') && name.endsWith('.qcow2'))).toBe(true);
      // The network went with the last machine on it.
      expect(await networks()).toEqual([]);
    } finally {
      await run('vmfile', 'destroy', '-f');
      await rm(project, { recursive: true, force: true });
    }
  });

  it('an unreachable host, a missing pool and a private network over two hosts are said plainly, and leave nothing behind', async () => {
    const unreachable = await makeProject(vmfile('qemu+ssh://root@127.0.0.1:1/system', host.pool));
    const nopool = await makeProject(vmfile(host.localUri, 'no-such-pool'));
    const spanning = await makeProject(`import { defineVm } from 'vmfile';
export default defineVm({
  defaults: { box: 'debian-12', folders: [], provider: { type: 'libvirt', hosts: ${JSON.stringify([host.localUri, host.remoteUri])}, pool: ${JSON.stringify(host.pool)} } },
  machines: { near: { network: { ip: '10.30.0.2' } }, far: { network: { ip: '10.30.0.3' } } },
});
`);
    try {
      const span = await cli('vmup', [], { cwd: spanning, netns: host.netns });
      expect(span.code, explain(span)).toBe(78);
      expect(span.stderr).toContain('the private network would span several hosts (near on qemu:///system, far on qemu+ssh://');
      const down = await cli('vmup', [], { cwd: unreachable, netns: host.netns });
      expect(down.code, explain(down)).toBe(1);
      expect(down.stderr).toContain('libvirt host qemu+ssh://root@127.0.0.1:1/system cannot be reached');
      expect(down.stderr).toContain('hint: check that the host is up');
      const missing = await cli('vmup', [], { cwd: nopool, netns: host.netns });
      expect(missing.code, explain(missing)).toBe(1);
      expect(missing.stderr).toContain(`libvirt host ${host.localUri} has no storage pool "no-such-pool"`);
      expect(missing.stderr).toContain('provider.pool');
      for (const project of [unreachable, nopool]) {
        const status = JSON.parse((await cli('vmfile', ['status', '--json'], { cwd: project, netns: host.netns })).stdout) as StatusJson[];
        expect(status[0]?.status).toBe('not created');
      }
    } finally {
      for (const project of [unreachable, nopool, spanning]) {
        await cli('vmfile', ['destroy', '-f'], { cwd: project, netns: host.netns });
        await rm(project, { recursive: true, force: true });
      }
    }
  });
});

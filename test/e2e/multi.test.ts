/**
 * A two-machine Vmfile through the built CLI: parallel boot, the private network (by
 * address and by name), a forwarded port, a live synced folder both ways, a read-only
 * one of the project without its .vmfile/, everything back after vmhalt + vmup, and
 * nothing left listening after destroy.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, explain, freePort, listening, makeProject } from './cli.js';

/** Runs only when asked for by name (vmfile provision web --step site), on every machine at once (limit: all). */
const ANSIBLE_STEP = `{ name: 'site', run: 'never', ansible: { playbook: 'site.yml', extraVars: { greeting: 'hello from ansible' }, groups: { front: ['web'], back: ['db'] }, limit: 'all' } }`;
const PLAYBOOK = `- hosts: all
  become: true
  gather_facts: false
  tasks:
    - name: write what Ansible knows about this machine
      ansible.builtin.copy:
        dest: /etc/vmfile-ansible
        content: "{{ inventory_hostname }} {{ greeting }} {{ group_names | join(',') }}\\n"
`;

const TCP_SERVER = `import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("0.0.0.0", 5432)); s.listen()
while True:
    c, _ = s.accept(); c.sendall(b"hello from db\\n"); c.close()
`;
const TCP_CLIENT = `import socket, sys
s = socket.create_connection((sys.argv[1], 5432), timeout=10); print(s.recv(100).decode().strip())
`;

describe('two machines: private network, ports, synced folders', () => {
  let project: string;
  let webPort: number;
  let busyPort: number;
  let busy: net.Server;
  const run = (bin: Parameters<typeof cli>[0], ...args: string[]) => cli(bin, args, { cwd: project });
  const ok = async (bin: Parameters<typeof cli>[0], ...args: string[]) => {
    const result = await run(bin, ...args);
    expect(result.code, explain(result)).toBe(0);
    return result;
  };
  const on = async (machine: string, command: string) => {
    // A short deadline: a command that leaves the SSH channel open should fail here, not hang the suite.
    const result = await cli('vmssh', [machine, '-c', command], { cwd: project, timeoutMs: 180_000 });
    expect(result.code, explain(result)).toBe(0);
    return result.stdout.trim();
  };
  // Each command returns once its server listens (python3 can take seconds to start on a guest busy after its boot).
  const listens = (port: number) => `for i in $(seq 150); do ss -Hltn "sport = :${port}" | grep -q . && exit 0; sleep 0.2; done; echo "nothing listens on ${port}" >&2; exit 1`;
  const startServers = async () => {
    await on('db', `nohup python3 /vmfile-tests/server.py </dev/null >/dev/null 2>&1 & ${listens(5432)}`);
    await on('web', `nohup python3 -m http.server 8000 --directory /shared </dev/null >/dev/null 2>&1 & ${listens(8000)}`);
  };
  const ports = async () => JSON.parse((await ok('vmfile', 'port', '--json')).stdout) as Record<string, { guest: number; host: number; hostIp: string }[]>;

  beforeAll(async () => {
    webPort = await freePort();
    busyPort = await freePort();
    busy = net.createServer().listen(busyPort, '127.0.0.1');
    project = await makeProject(`import { defineVm } from 'vmfile';
export default defineVm({
  defaults: { box: 'debian-12', cpus: 1, memory: '768MiB', disk: '4GiB', folders: [], warmStart: false },
  machines: {
    web: {
      primary: true,
      network: { ip: '10.10.0.11' },
      ports: [{ guest: 8000, host: ${webPort} }, { guest: 9000, host: ${busyPort}, autoCorrect: true }],
      folders: [{ host: 'shared', guest: '/shared' }, { host: '.', guest: '/project', readonly: true }],
      provision: [${ANSIBLE_STEP}],
    },
    db: { network: { ip: '10.10.0.12' }, folders: [{ host: 'tests', guest: '/vmfile-tests', type: 'rsync' }] },
  },
});
`);
    await mkdir(join(project, 'shared'));
    await mkdir(join(project, 'tests'));
    await writeFile(join(project, 'tests', 'server.py'), TCP_SERVER);
    await writeFile(join(project, 'shared', 'client.py'), TCP_CLIENT);
    await writeFile(join(project, 'site.yml'), PLAYBOOK);
  });

  afterAll(async () => {
    busy.close();
    await run('vmfile', 'destroy', '-f');
    await rm(project, { recursive: true, force: true });
  });

  it('vmup boots both machines in parallel and reports each', async () => {
    const result = await ok('vmup');
    const lines = result.stderr.split('\n');
    const started = (m: string) => lines.findIndex((line) => line.startsWith(`==> ${m}: Starting QEMU`) && line.includes('done in'));
    const ready = (m: string) => lines.findIndex((line) => line.startsWith(`==> ${m}: Waiting for SSH`) && line.includes('done in'));
    // Both QEMUs run before either guest answers SSH: the boots overlap.
    expect(Math.max(started('web'), started('db'))).toBeLessThan(Math.min(ready('web'), ready('db')));
    expect(result.stderr).toContain(`host port ${busyPort} is in use; guest port 9000/tcp is forwarded from 127.0.0.1:`);
  });

  it('web reaches a TCP service on db over the private network, by address and by name', async () => {
    await startServers();
    expect(await on('web', 'python3 /shared/client.py 10.10.0.12')).toBe('hello from db');
    expect(await on('web', 'python3 /shared/client.py db')).toBe('hello from db');
  });

  it('forwarded ports answer on 127.0.0.1 and vmfile port lists them (auto-corrected one included)', async () => {
    await writeFile(join(project, 'shared', 'index.txt'), 'served from the synced folder\n');
    const response = await fetch(`http://127.0.0.1:${webPort}/index.txt`);
    expect(await response.text()).toBe('served from the synced folder\n');
    const web = (await ports())['web'] ?? [];
    expect(web).toContainEqual(expect.objectContaining({ guest: 8000, host: webPort, hostIp: '127.0.0.1' }));
    const corrected = web.find((port) => port.guest === 9000);
    expect(corrected?.host).not.toBe(busyPort);
  });

  it('vmup and vmup --provision on running machines leave them as they are, forwarded ports included', async () => {
    // The port check once ran before the "already running" check and found the machine's own forward.
    for (const args of [[], ['--provision']]) {
      const again = await ok('vmup', ...args);
      expect(again.stderr).toContain('==> web: already running');
      expect(again.stderr).toContain('==> db: already running');
    }
    expect(await (await fetch(`http://127.0.0.1:${webPort}/index.txt`)).text()).toBe('served from the synced folder\n');
  });

  it('the synced folder is live both ways', async () => {
    await writeFile(join(project, 'shared', 'from-host.txt'), 'written on the host\n');
    expect(await on('web', 'cat /shared/from-host.txt')).toBe('written on the host');
    await on('web', 'echo written in the guest | sudo tee /shared/from-guest.txt >/dev/null');
    expect(await readFile(join(project, 'shared', 'from-guest.txt'), 'utf8')).toBe('written in the guest\n');
  });

  it("a read-only live folder of the project shows no .vmfile/ (the machines' login keys), and is read-only even to the guest's root", async () => {
    // The project directory is the test's own temporary one (mode 0700, root's), so the guest looks as root.
    expect(await on('web', 'sudo ls /project')).toContain('Vmfile.ts');
    expect(await on('web', 'sudo ls -A /project/.vmfile | wc -l')).toBe('0');
    // The guest's own ro mount option is not what keeps it out: a remount read-write still cannot write.
    expect(await on('web', 'sudo mount -o remount,rw /project 2>/dev/null; sudo touch /project/written-by-guest 2>/dev/null && echo wrote || echo refused')).toBe('refused');
    await expect(readFile(join(project, 'written-by-guest'))).rejects.toThrow(/ENOENT/);
  });

  it("an Ansible step runs the host's ansible-playbook against the Vmfile's machines, with groups and extra vars", async () => {
    // One playbook run from web's step reaches both machines through the generated inventory.
    const result = await ok('vmfile', 'provision', 'web', '--step', 'site');
    expect(result.stderr).toMatch(/web\/site \| db +: ok=1 +changed=1 +unreachable=0 +failed=0/);
    expect(result.stderr).toMatch(/web\/site \| web +: ok=1 +changed=1 +unreachable=0 +failed=0/);
    expect(await on('web', 'cat /etc/vmfile-ansible')).toBe('web hello from ansible front');
    expect(await on('db', 'cat /etc/vmfile-ansible')).toBe('db hello from ansible back');
  });

  it('vmssh without a name enters the primary machine', async () => {
    expect((await ok('vmssh', '-c', 'hostname')).stdout.trim()).toBe('web');
  });

  it('after vmhalt and vmup, ports, mounts and the network are back', async () => {
    await ok('vmhalt');
    expect(await listening(webPort)).toBe(false);
    await ok('vmup');
    await startServers();
    expect(await on('web', 'cat /shared/from-host.txt')).toBe('written on the host');
    expect(await (await fetch(`http://127.0.0.1:${webPort}/from-host.txt`)).text()).toBe('written on the host\n');
    expect(await on('web', 'python3 /shared/client.py db')).toBe('hello from db');
  });

  it('after destroy nothing listens on the host', async () => {
    const before = await ports();
    await ok('vmfile', 'destroy', '-f');
    const hostPorts = Object.values(before).flatMap((list) => list.map((port) => port.host));
    expect(hostPorts.length).toBeGreaterThanOrEqual(4);
    for (const port of hostPorts) expect(await listening(port), `port ${port}`).toBe(false);
  });
});

describe('multi-machine bad input', () => {
  it('an unknown machine name, a missing folder, a taken port: each a clear error before boot', async () => {
    const held = await freePort();
    const server = net.createServer().listen(held, '127.0.0.1');
    const dir = await makeProject(`import { defineVm } from 'vmfile';
export default defineVm({
  defaults: { box: 'debian-12', cpus: 1, folders: [] },
  machines: { web: { folders: [{ host: 'missing', guest: '/m' }] }, db: { ports: [{ guest: 80, host: ${held} }] } },
});
`);
    try {
      const unknown = await cli('vmup', ['cache'], { cwd: dir });
      expect(unknown.code, explain(unknown)).toBe(1);
      expect(unknown.stderr).toContain('no machine named "cache"');
      expect(unknown.stderr).toContain('machines in this Vmfile: web, db');
      const folder = await cli('vmup', ['web'], { cwd: dir });
      expect(folder.code, explain(folder)).toBe(78);
      expect(folder.stderr).toContain(`machine "web": folders[0].host ${join(dir, 'missing')} does not exist`);
      const port = await cli('vmup', ['db'], { cwd: dir });
      expect(port.code, explain(port)).toBe(1);
      expect(port.stderr).toContain(`machine "db": host port 127.0.0.1:${held}/tcp (for guest port 80) is already in use`);
      const status = await cli('vmfile', ['status', '--json'], { cwd: dir });
      expect((JSON.parse(status.stdout) as { status: string }[]).map((s) => s.status)).toEqual(['not created', 'not created']);
    } finally {
      server.close();
      await cli('vmfile', ['destroy', '-f'], { cwd: dir });
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/**
 * `vmfile init --from Vagrantfile` through the built CLI, on the Vagrantfiles in
 * vagrantfiles/ (written the way public projects write them: loops over machine
 * tables, ENV.fetch, blocks for two or more providers, Ansible, a VirtualBox-only one).
 * Each converts, passes `vmfile validate`, and boots with the ports, folders and
 * provisioning effects its Vagrantfile describes, checked from the host: a forwarded
 * port answers, a file from a synced folder is there, a step's result exists.
 *
 * Their box, debian/bookworm64, is Vagrant's `org/name`: the converter gives it the URL
 * Vagrant would look it up at (VAGRANT_SERVER_URL/org/name), and this test serves that
 * catalog on 127.0.0.1, offering a vmfile box file made of the test store's debian-12
 * files, installed from there once into a vmfile home of this test's own. Every machine
 * has one shape (2 CPUs, 512 MiB, the default disk, a private network), so only the
 * first boots cold: the others start from its warm state. Machines are destroyed as
 * soon as they are checked, two projects at a time.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import dgram from 'node:dgram';
import { cp, link, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { startFakeHttpServer, type FakeHttpServer } from '../unit/box/fake-http-server.js';
import { cli, explain, freePort, repoRoot, type CliResult } from './cli.js';

const SOURCES = join(repoRoot, 'test', 'e2e', 'vagrantfiles');
const BOX = 'debian/bookworm64';
const BOX_VERSION = '12.20261207.1';

describe('vmfile init --from Vagrantfile', () => {
  let work: string;
  let home: string;
  let server: FakeHttpServer;
  /** Environment each Vagrantfile is converted with (the values end up in its Vmfile). */
  const env: Record<string, string> = {};
  const project = (name: string) => join(work, name);
  const run = (name: string, bin: Parameters<typeof cli>[0], args: string[], extra: Record<string, string> = {}): Promise<CliResult> =>
    cli(bin, args, { cwd: project(name), env: { VMFILE_HOME: home, ...env, ...extra }, timeoutMs: 600_000 });
  const ok = async (name: string, bin: Parameters<typeof cli>[0], ...args: string[]): Promise<CliResult> => {
    const result = await run(name, bin, args);
    expect(result.code, explain(result)).toBe(0);
    return result;
  };
  const ssh = async (name: string, machine: string | undefined, command: string): Promise<string> =>
    (await ok(name, 'vmssh', ...(machine === undefined ? [] : [machine]), '-c', command)).stdout.trim();
  const converted: Record<string, { init: CliResult; validate: CliResult | undefined }> = {};
  const timings: string[] = [];

  /**
   * vmup, the checks, then destroy at once (also when a check fails), timed. Two
   * projects boot at a time: most of a warm start is waiting (SSH, rsync), which two
   * machines share well on two cores.
   */
  async function boots(name: string, check: () => Promise<void>): Promise<void> {
    await lanes.take();
    const started = performance.now();
    try {
      const up = await run(name, 'vmup', []);
      expect(up.code, explain(up)).toBe(0);
      await check();
    } finally {
      await run(name, 'vmfile', ['destroy', '-f']);
      timings.push(`${name}: ${((performance.now() - started) / 1000).toFixed(1)} s`);
      lanes.give();
    }
  }
  const lanes = semaphore(2);

  /** The body at http://127.0.0.1:port/path, asking again while the guest's server (started by a step in the background) comes up. */
  async function get(port: number, path: string): Promise<string> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        const response = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(20_000) });
        expect(response.status).toBe(200);
        return await response.text();
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
  }

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'vmfile-vagrant-'));
    home = join(work, 'home');
    await mkdir(home, { mode: 0o700 });
    server = await startFakeHttpServer();
    const box = await boxFileOfTestStore(join(work, 'box'));
    const sha256 = createHash('sha256').update(box).digest('hex');
    server.files.set(`/${BOX}/${BOX_VERSION}/vmfile.box`, { body: box, etag: '"1"' });
    // As Vagrant's server does: the catalog at /org/name, served as JSON.
    server.routes.push((req, res) => {
      if (req.url !== `/${BOX}`) return false;
      const catalog = { name: BOX, versions: [{ version: BOX_VERSION, providers: [{ name: 'vmfile', url: server.url(`/${BOX}/${BOX_VERSION}/vmfile.box`), checksum: sha256, checksum_type: 'sha256', architecture: 'amd64' }] }] };
      res.writeHead(200, { 'content-type': 'application/json' }).end(req.method === 'HEAD' ? undefined : JSON.stringify(catalog));
      return true;
    });
    Object.assign(env, {
      VAGRANT_SERVER_URL: server.url(''),
      WEB_PORT: String(await freePort()),
      APP_PORT: String(await freePort()),
      METRICS_PORT: String(await freePort()),
      HTTP_PORT: String(await freePort()),
      DNS_PORT: String(await freePort()),
      CLUSTER_NAME: 'e2e',
      PROJECT: 'e2e-project',
      APP_STAGE: 'staging',
    });
    for (const name of await readdir(SOURCES)) await cp(join(SOURCES, name), project(name), { recursive: true });
    // The box from the catalog the converted Vmfiles name (server.url('/debian/bookworm64'),
    // checked below), installed before any vmup: a vmup that installs a box computes a
    // different warm-state key than later ones, which would cost a second generic boot.
    const added = await cli('vmfile', ['box', 'add', BOX, server.url(`/${BOX}`)], { cwd: work, env: { VMFILE_HOME: home }, timeoutMs: 300_000 });
    expect(added.code, explain(added)).toBe(0);
    // Converted and validated all at once: each is two short node processes.
    await Promise.all(
      (await readdir(SOURCES)).map(async (name) => {
        const result = await run(name, 'vmfile', ['init', '--from', 'Vagrantfile']);
        converted[name] = { init: result, validate: result.code === 0 ? await run(name, 'vmfile', ['validate']) : undefined };
      }),
    );
  });

  afterAll(async () => {
    process.stderr.write(`vagrant-convert boots:\n  ${timings.join('\n  ')}\n`);
    await server?.close();
    await rm(work, { recursive: true, force: true });
  });

  it('converts every Vagrantfile into a Vmfile that passes vmfile validate', async () => {
    const names = await readdir(SOURCES);
    expect(names).toHaveLength(12);
    for (const name of names) {
      const { init, validate } = converted[name] ?? {};
      expect(init?.code, `${name}\n${init === undefined ? 'not run' : explain(init)}`).toBe(0);
      expect(await readFile(join(project(name), '.gitignore'), 'utf8')).toContain('.vmfile/');
      expect(validate?.code, `${name}\n${validate === undefined ? 'not run' : explain(validate)}`).toBe(0);
    }
    // A second conversion never overwrites the Vmfile.
    const again = await run('static-site', 'vmfile', ['init', '--from', 'Vagrantfile']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('already exists; vmfile init does not overwrite it');
    // ENV values are written in and listed, without process.env.
    const cluster = await readFile(join(project('ansible-cluster'), 'Vmfile.ts'), 'utf8');
    expect(cluster).toContain('//   CLUSTER_NAME="e2e" (Vagrantfile:5)');
    expect(cluster).toContain('//   NODES not set, so "2" (Vagrantfile:4)');
    expect(cluster).toContain("extraVars: { cluster_name: 'e2e' }");
    expect(cluster).not.toContain('process.env');
    expect(await readFile(join(project('static-site'), 'Vmfile.ts'), 'utf8')).toContain(`url: '${server.url(`/${BOX}`)}'`);
    // The converted Vmfile type-checks with the tsconfig.json init wrote, without node_modules in the project.
    execFileSync(process.execPath, [join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '--noEmit', '-p', join(project('ansible-cluster'), 'tsconfig.json')]);
  });

  it('lists each setting of a VirtualBox-only Vagrantfile that does not convert, on stderr and at its place', async () => {
    const stderr = converted['virtualbox-gaps']?.init.stderr ?? '';
    const vmfile = await readFile(join(project('virtualbox-gaps'), 'Vmfile.ts'), 'utf8');
    expect(stderr).toMatch(/^8 settings of Vagrantfile did not convert/m);
    for (const [line, said] of [
      [8, 'config.ssh.forward_agent = true'],
      [9, 'config.vm.network "public_network"'],
      [17, 'vb.name = "legacy-dev"'],
      [18, 'vb.gui = false'],
      [21, 'vb.customize ["modifyvm","id","--natdnshostresolver1","on"]'],
      [22, 'vb.customize ["modifyvm","id","--vram","16"]'],
      [23, 'vb.customize ["setextradata"'],
      [26, 'config.vm.provision "puppet"'],
    ] as const) {
      expect(stderr).toContain(`  - Vagrantfile:${line}: ${said}`);
      expect(vmfile).toContain(`// NOT CONVERTED (Vagrantfile:${line}): ${said}`);
    }
    expect(stderr).toContain('Vagrant.has_plugin?("vagrant-vbguest") was answered false');
  });

  // First and alone: its vmup makes the warm state the others start from.
  it('static-site: the forwarded port serves the synced folder, and the step ran', async () => {
    await boots('static-site', async () => {
      expect(await get(Number(env['WEB_PORT']), '/index.html')).toBe(await readFile(join(SOURCES, 'static-site', 'site', 'index.html'), 'utf8'));
      expect(await ssh('static-site', undefined, 'cat /etc/provisioned-by; hostname')).toBe('provisioned by vagrant\nstatic-site');
    });
  });

  it.concurrent('multi-tier: web and db start (backup does not), web serves /vagrant files and finds db on the private network', async () => {
    await boots('multi-tier', async () => {
      const port = Number(env['APP_PORT']);
      expect(await get(port, '/VERSION')).toBe('app release 1.4.2\n');
      expect(await get(port, '/db.txt')).toMatch(/^192\.168\.56\.11\s+db\b/);
      expect(await ssh('multi-tier', 'db', 'cat /etc/node-role; hostname')).toBe('role=db ip=192.168.56.11\ndb');
      // vmssh without a name goes to the primary machine.
      expect(await ssh('multi-tier', undefined, 'hostname')).toBe('web');
      const status = JSON.parse((await ok('multi-tier', 'vmfile', 'status', '--json')).stdout) as { machine: string; status: string }[];
      expect(status.find((entry) => entry.machine === 'backup')?.status).toBe('not created');
    });
  });

  it.concurrent('ansible-cluster: one Ansible run from the last node provisions both, with their groups and the extra var', async () => {
    await boots('ansible-cluster', async () => {
      expect(await ssh('ansible-cluster', 'node1', 'cat /etc/cluster-member')).toBe('e2e leader');
      expect(await ssh('ansible-cluster', 'node2', 'cat /etc/cluster-member')).toBe('e2e follower');
    });
  });

  it.concurrent('ansible-local: the playbook from the synced folder ran, with the extra var read from ENV', async () => {
    await boots('ansible-local', async () => {
      expect(await ssh('ansible-local', undefined, 'cat /etc/motd; test -f /vagrant/ansible/playbook.yml && echo synced')).toBe('Welcome to e2e-project\nsynced');
    });
  });

  it.concurrent('script-args: the script ran unprivileged with its arguments and environment', async () => {
    await boots('script-args', async () => {
      expect(await ssh('script-args', undefined, 'cat ~/bootstrap.out')).toBe('args: --stage staging --verbose\nuser: vm\nstage: staging\nworkers: 2');
    });
  });

  it.concurrent('file-upload: the uploaded file was installed by the next step', async () => {
    await boots('file-upload', async () => {
      expect(await ssh('file-upload', undefined, 'cat /etc/app/app.ini')).toBe((await readFile(join(SOURCES, 'file-upload', 'config', 'app.ini'), 'utf8')).trim());
    });
  });

  it.concurrent('vmware-vbox: the VMware vmx size and the hostname', async () => {
    await boots('vmware-vbox', async () => {
      const [cpus, hostname, memory] = (await ssh('vmware-vbox', undefined, "cat /etc/cpu-count /etc/host-name; awk '/MemTotal/ {print $2}' /proc/meminfo")).split('\n');
      expect([cpus, hostname]).toEqual(['2', 'vmware-box']);
      expect(Number(memory)).toBeGreaterThan(400_000);
      expect(Number(memory)).toBeLessThan(524_288);
    });
  });

  it.concurrent('qemu-plugin: the qemu block wins over libvirt, and its port on 127.0.0.1 serves the project folder', async () => {
    await boots('qemu-plugin', async () => {
      expect(await get(Number(env['METRICS_PORT']), '/metrics.txt')).toBe('metrics: ok\n');
      expect(await ssh('qemu-plugin', undefined, 'nproc')).toBe('2');
    });
  });

  it.concurrent('rsync-exclude: the project is copied without the excluded paths', async () => {
    await boots('rsync-exclude', async () => {
      const listed = (await ssh('rsync-exclude', undefined, 'ls -A /home/vagrant/project')).split('\n');
      expect(listed).toEqual(expect.arrayContaining(['Vagrantfile', 'Vmfile.ts', 'src']));
      for (const excluded of ['node_modules', 'logs', '.env']) expect(listed).not.toContain(excluded);
      expect(await ssh('rsync-exclude', undefined, 'cat /home/vagrant/project/src/main.py')).toBe('print("hello")');
    });
  });

  it.concurrent('run-policies: once and always ran, never only when named', async () => {
    await boots('run-policies', async () => {
      expect(await ssh('run-policies', undefined, 'cat /var/log/provision-once /var/log/provision-always; test -e /var/log/db-was-reset && echo reset || echo not reset')).toBe('once\nalways\nnot reset');
      await ok('run-policies', 'vmfile', 'provision', '--step', 'reset-db');
      expect(await ssh('run-policies', undefined, 'test -e /var/log/db-was-reset && echo reset')).toBe('reset');
    });
  });

  it.concurrent('port-options: a taken host port moves (auto_correct) and answers there; the UDP port echoes', async () => {
    const taken = Number(env['HTTP_PORT']);
    const holder = net.createServer().listen(taken, '127.0.0.1');
    await new Promise((resolve) => holder.once('listening', resolve));
    try {
      await boots('port-options', async () => {
        const ports = JSON.parse((await ok('port-options', 'vmfile', 'port', '--json')).stdout) as Record<string, { guest: number; host: number; protocol?: string }[]>;
        const http = Object.values(ports)[0]?.find((port) => port.guest === 80);
        expect(http?.host).toBeDefined();
        expect(http?.host).not.toBe(taken);
        expect(await get(http?.host ?? 0, '/index.txt')).toBe('port options\n');
        expect(await udpEcho(Number(env['DNS_PORT']), 'ping')).toBe('echo:ping');
      });
    } finally {
      holder.close();
    }
  });

  it.concurrent('virtualbox-gaps: boots with what converted', async () => {
    await boots('virtualbox-gaps', async () => {
      expect(await ssh('virtualbox-gaps', undefined, 'cat /etc/legacy-marker')).toBe('legacy');
    });
  });
});

/** At most `count` holders at once; the others wait in order. */
function semaphore(count: number): { take(): Promise<void>; give(): void } {
  let free = count;
  const waiting: (() => void)[] = [];
  return {
    take: () => {
      if (free > 0) {
        free -= 1;
        return Promise.resolve();
      }
      return new Promise<void>((resolve) => waiting.push(resolve));
    },
    give: () => {
      const next = waiting.shift();
      if (next === undefined) free += 1;
      else next();
    },
  };
}

/** A UDP datagram to 127.0.0.1:port and the first answer, trying again while the guest's listener starts. */
async function udpEcho(port: number, text: string): Promise<string> {
  const socket = dgram.createSocket('udp4');
  try {
    return await new Promise<string>((resolve, reject) => {
      const timer = setInterval(() => socket.send(text, port, '127.0.0.1'), 500);
      const deadline = setTimeout(() => {
        clearInterval(timer);
        reject(new Error(`no UDP answer on 127.0.0.1:${port} in 20 s`));
      }, 20_000);
      socket.once('message', (message) => {
        clearInterval(timer);
        clearTimeout(deadline);
        resolve(message.toString());
      });
      socket.send(text, port, '127.0.0.1');
    });
  } finally {
    socket.close();
  }
}

/**
 * A vmfile box file (box.json first, then its files, as vmfile package writes one) of the
 * test store's debian-12 box: the same disk, kernel and initrd, so it boots as that box does.
 */
async function boxFileOfTestStore(dir: string): Promise<Buffer> {
  await mkdir(dir);
  const versions = join(inject('vmfileHome'), 'boxes', 'debian-12');
  const [version] = (await readdir(versions)).sort().reverse();
  const source = join(versions, version ?? '');
  const metadata = JSON.parse(await readFile(join(source, 'box.json'), 'utf8')) as Record<string, unknown>;
  const files = ['disk.qcow2', 'kernel', 'initrd'];
  for (const file of files) await link(join(source, file), join(dir, file)).catch(() => cp(join(source, file), join(dir, file)));
  const { source: _built, ...rest } = metadata;
  await writeFile(join(dir, 'box.json'), JSON.stringify({ ...rest, name: 'bookworm64', version: BOX_VERSION, source: { kind: 'package', machine: 'default', fromBox: `debian-12 ${version}` } }));
  execFileSync('tar', ['-cf', join(dir, 'vmfile.box'), '-C', dir, 'box.json', ...files]);
  return readFile(join(dir, 'vmfile.box'));
}

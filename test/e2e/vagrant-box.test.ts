/**
 * vmfile package --format vagrant-libvirt, read by Vagrant itself: a machine that a
 * vmfile step provisioned is packaged; Debian's vagrant and vagrant-libvirt add the box,
 * boot it with `vagrant up --provider=libvirt` on a libvirt the test starts in a network
 * namespace of its own (libvirt-host.ts), and reach it with `vagrant ssh`, which finds
 * the step's file, the project folder copied in, passwordless sudo, and Vagrant's own
 * key in place of the insecure one it logged in with first. Everything Vagrant does,
 * its management network and DHCP included, stays inside the namespace.
 * The machine is not about booting under vmfile, so it starts warm.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliOk, makeProject, WARM_SHAPE } from './cli.js';
import { startLibvirtHost, virsh, type LibvirtHostFixture } from './libvirt-host.js';

const exec = promisify(execFile);
const BOX = 'vmfile-e2e';
const MARK = `packaged-by-vmfile-${process.pid}`;

const vmfile = `import { defineVm } from 'vmfile';
export default defineVm({
  box: 'debian-12', ${WARM_SHAPE}, folders: [],
  provision: [{ name: 'mark', shell: 'echo ${MARK} > /etc/vmfile-mark' }],
});
`;

/** The project's Vagrantfile: what a host without KVM needs, on the test's storage pool. */
const vagrantfile = (pool: string) => `Vagrant.configure("2") do |config|
  config.vm.box = "${BOX}"
  config.vm.provider :libvirt do |libvirt|
    libvirt.driver = "qemu"
    libvirt.cpu_mode = "custom"
    libvirt.cpu_model = "qemu64"
    libvirt.memory = 1024
    libvirt.cpus = 2
    libvirt.graphics_type = "none"
    libvirt.storage_pool_name = "${pool}"
  end
end
`;

describe('a box for Vagrant (vmfile package --format vagrant-libvirt)', () => {
  let host: LibvirtHostFixture;
  let work: string;
  let vagrantHome: string;
  beforeAll(async () => {
    host = await startLibvirtHost();
    work = await mkdtemp(join(tmpdir(), 'vmfile-e2e-vagrant-'));
    vagrantHome = join(work, 'vagrant.d');
  });
  afterAll(async () => {
    if (host !== undefined) {
      await vagrant(join(work, 'project'), 'destroy', '-f').catch(() => undefined);
      // vagrant-libvirt's management network is defined in libvirt's configuration, which
      // the libvirt tests share: it must not outlive this test.
      await virsh(host.localUri, 'net-destroy', 'vagrant-libvirt').catch(() => '');
      await virsh(host.localUri, 'net-undefine', 'vagrant-libvirt').catch(() => '');
      await host.stop();
    }
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  /** Runs Debian's vagrant in the libvirt host's namespace; fails with its output unless it exits 0. */
  async function vagrant(cwd: string, ...args: string[]): Promise<string> {
    try {
      const { stdout } = await exec('ip', ['netns', 'exec', host.netns, 'vagrant', ...args], {
        cwd,
        timeout: 600_000,
        maxBuffer: 64 * 1024 * 1024,
        env: { ...process.env, VAGRANT_HOME: vagrantHome, VAGRANT_CHECKPOINT_DISABLE: '1', VAGRANT_NO_COLOR: '1', VAGRANT_DEFAULT_PROVIDER: 'libvirt' },
      });
      return stdout;
    } catch (error) {
      const failed = error as { stdout?: string; stderr?: string; message: string };
      throw new Error(`vagrant ${args.join(' ')} failed: ${failed.message}\n--- stdout\n${failed.stdout ?? ''}\n--- stderr\n${failed.stderr ?? ''}`);
    }
  }

  it('packages a provisioned machine that vagrant box add takes, vagrant up boots and vagrant ssh reaches', async () => {
    const source = await makeProject(vmfile);
    const run = (bin: 'vmfile' | 'vmup' | 'vmhalt', ...args: string[]) => cliOk(bin, args, { cwd: source });
    await run('vmup');
    await run('vmhalt');
    const boxFile = join(work, `${BOX}.box`);
    const packaged = JSON.parse((await run('vmfile', 'package', '--format', 'vagrant-libvirt', '--output', boxFile, '--name', BOX, '--version', '1.0', '--json')).stdout) as {
      format: string;
      box: { provider: string; format: string; virtual_size: number };
    };
    expect(packaged.format).toBe('vagrant-libvirt');
    // The box's 4 GiB disk is a whole 4 GiB with its partition table and boot loader.
    expect(packaged.box).toEqual({ provider: 'libvirt', format: 'qcow2', virtual_size: 4 });
    const { stdout: members } = await exec('tar', ['-tf', boxFile]);
    expect(members.trim().split('\n').sort()).toEqual(['Vagrantfile', 'box.img', 'metadata.json']);

    const project = join(work, 'project');
    await exec('mkdir', ['-p', project]);
    await writeFile(join(project, 'Vagrantfile'), vagrantfile(host.pool));
    await writeFile(join(project, 'hello.txt'), 'from the host\n');
    await vagrant(project, 'box', 'add', '--name', BOX, boxFile);
    expect(await vagrant(project, 'box', 'list')).toContain(`${BOX} (libvirt, 0)`);

    await vagrant(project, 'up', '--provider=libvirt');
    const inGuest = async (command: string) => (await vagrant(project, 'ssh', '-c', command)).trim();
    expect(await inGuest('cat /etc/vmfile-mark')).toBe(MARK);
    expect(await inGuest('id -un; sudo -n id -un')).toBe('vagrant\nroot');
    expect(await inGuest('cat /vagrant/hello.txt')).toBe('from the host');
    // Vagrant logged in with its insecure key, then put a key of its own for this machine in its place.
    const authorized = await inGuest('cat ~/.ssh/authorized_keys');
    expect(authorized).not.toContain('vagrant insecure public key');
    const own = (await readFile(join(project, '.vagrant', 'machines', 'default', 'libvirt', 'private_key'), 'utf8')).trim();
    expect(own).toMatch(/^-----BEGIN .*PRIVATE KEY-----/);
    // The vmfile machine's login key and host keys were not carried over.
    expect(await inGuest('sudo -n sh -c "test ! -e /home/vm/.ssh/authorized_keys && echo none"')).toBe('none');

    await vagrant(project, 'halt');
    await vagrant(project, 'destroy', '-f');
    expect(await virsh(host.localUri, 'list', '--all', '--name')).not.toContain('project_default');
  });
});

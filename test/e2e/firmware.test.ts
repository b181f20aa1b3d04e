/**
 * Boxes that boot themselves, through the built CLI, with the default folder on and no
 * rsync in the images (test/images/build.sh makes them from Debian's packages):
 * - a GPT cloud image with grub and cloud-init, under BIOS and then under UEFI (one
 *   machine, two boots), with snapshots and suspend/resume under UEFI;
 * - a Vagrant libvirt box without cloud-init: reached first with Vagrant's insecure key,
 *   which then no longer logs in.
 * Each runs in a box store of its own, so the shared one keeps only debian-12.
 */
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'ssh2';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { cli, cliOk, explain, makeProject } from './cli.js';

const images = inject('testImages');

function harness(): {
  home: () => string;
  project: () => string;
  run: (bin: Parameters<typeof cli>[0], ...args: string[]) => ReturnType<typeof cli>;
  ok: (bin: Parameters<typeof cli>[0], ...args: string[]) => ReturnType<typeof cli>;
  guest: (command: string) => Promise<string>;
  setup: (vmfile: string) => Promise<void>;
  teardown: () => Promise<void>;
} {
  let home = '';
  let project = '';
  const where = () => ({ cwd: project, env: { VMFILE_HOME: home } });
  const run = (bin: Parameters<typeof cli>[0], ...args: string[]) => cli(bin, args, where());
  const ok = (bin: Parameters<typeof cli>[0], ...args: string[]) => cliOk(bin, args, where());
  return {
    home: () => home,
    project: () => project,
    run,
    ok,
    guest: async (command) => (await ok('vmssh', '-c', command)).stdout.trim(),
    setup: async (vmfile) => {
      home = await mkdtemp(join(tmpdir(), 'vmfile-e2e-home-'));
      project = await makeProject(vmfile, { 'data.txt': 'from the host\n' });
    },
    teardown: async () => {
      await run('vmfile', 'destroy', '-f');
      await rm(project, { recursive: true, force: true });
      await rm(home, { recursive: true, force: true });
    },
  };
}

const cloudVmfile = (firmware: 'bios' | 'uefi') => `import { defineVm } from 'vmfile';
export default defineVm({
  box: 'cloud', firmware: '${firmware}', cpus: 2, memory: '1GiB', disk: '4GiB', hostname: 'cloudy',
  provision: [{ name: 'mark', shell: 'echo once >> /var/tmp/mark' }],
});
`;

describe('a GPT cloud image under BIOS and UEFI', () => {
  const h = harness();
  beforeAll(() => h.setup(cloudVmfile('bios')));
  afterAll(() => h.teardown());

  it('is added with the firmwares its partition table boots', async () => {
    await h.ok('vmfile', 'box', 'add', 'cloud', join(images, 'cloud.qcow2'));
    const box = await boxMetadata(h.home(), 'cloud');
    expect(box['boot']).toEqual({ type: 'firmware', firmware: 'uefi', supports: ['uefi', 'bios'] });
    expect(box['user']).toBe('vm');
  });

  it('boots under BIOS, installs rsync for the default folder, grows the disk and provisions', async () => {
    const up = await h.ok('vmup');
    expect(up.stderr).toContain('Starting QEMU (tcg, BIOS,');
    expect(up.stderr).toContain('the guest had no rsync; installed it with its package manager');
    expect(await h.guest('test -d /sys/firmware/efi && echo uefi || echo bios')).toBe('bios');
    expect(await h.guest('cat /vmfile/data.txt')).toBe('from the host');
    expect(await h.guest('hostname')).toBe('cloudy');
    expect(await h.guest('cat /var/tmp/mark')).toBe('once');
    // The box's disk is 2 GiB; cloud-init's growpart and resize2fs filled the 4 GiB disk.
    expect(Number(await h.guest("df --output=size -B1 / | tail -n 1"))).toBeGreaterThan(3 * 1024 ** 3);
  });

  it('refuses to package a partitioned disk, saying why', async () => {
    await h.ok('vmhalt');
    const packaged = await h.run('vmfile', 'package', '--output', join(h.project(), 'out.box'));
    expect(packaged.code, explain(packaged)).toBe(1);
    expect(packaged.stderr).toContain('boots itself from a partitioned disk');
    await expect(stat(join(h.project(), 'out.box'))).rejects.toThrow();
  });

  it('boots the same disk under UEFI with its own variable store; snapshots and suspend/resume work', async () => {
    await writeFile(join(h.project(), 'Vmfile.ts'), cloudVmfile('uefi'));
    const up = await h.ok('vmup');
    expect(up.stderr).toContain('Starting QEMU (tcg, UEFI,');
    expect(await h.guest('test -d /sys/firmware/efi && echo uefi || echo bios')).toBe('uefi');
    expect((await stat(join(h.project(), '.vmfile/machines/default/efivars.qcow2'))).isFile()).toBe(true);
    expect(await h.guest('cat /var/tmp/mark')).toBe('once');

    await h.ok('vmfile', 'snapshot', 'save', 'clean');
    await h.guest('echo later > /var/tmp/after');
    await h.ok('vmfile', 'snapshot', 'restore', 'clean');
    expect(await h.guest('test -e /var/tmp/after && echo present || echo gone')).toBe('gone');

    const bootId = await h.guest('cat /proc/sys/kernel/random/boot_id');
    await h.ok('vmfile', 'suspend');
    const resumed = await h.ok('vmup');
    expect(resumed.stderr).toContain('resumed');
    expect(await h.guest('cat /proc/sys/kernel/random/boot_id')).toBe(bootId);
    expect(await h.guest('test -d /sys/firmware/efi && echo uefi || echo bios')).toBe('uefi');
  });

  it('refuses a firmware the box cannot boot, naming the field', async () => {
    const project = await makeProject(`import { defineVm } from 'vmfile';\nexport default defineVm({ box: 'debian-12', firmware: 'uefi' });\n`);
    try {
      const refused = await cli('vmup', [], { cwd: project });
      expect(refused.code, explain(refused)).toBe(78);
      expect(refused.stderr).toContain('firmware "uefi" is set, but box debian-12 boots its kernel directly');
      const status = await cli('vmfile', ['status', '--json'], { cwd: project });
      expect(JSON.parse(status.stdout)).toEqual([expect.objectContaining({ status: 'not created' })]);
    } finally {
      await rm(project, { recursive: true, force: true });
    }
  });
});

describe('a Vagrant libvirt box without cloud-init', () => {
  const h = harness();
  beforeAll(() => h.setup(`import { defineVm } from 'vmfile';
export default defineVm({ box: 'vagrant', memory: '1GiB', disk: '4GiB', hostname: 'vagtest', provision: [{ name: 'mark', shell: 'echo once >> /var/tmp/mark' }] });
`));
  afterAll(() => h.teardown());

  it('is added as a Vagrant box: user vagrant, first login with the insecure key', async () => {
    await h.ok('vmfile', 'box', 'add', 'vagrant', join(images, 'vagrant.box'));
    const box = await boxMetadata(h.home(), 'vagrant');
    expect(box).toMatchObject({ user: 'vagrant', firstLogin: 'vagrant-insecure-key', boot: { type: 'firmware', firmware: 'bios', supports: ['bios'] } });
  });

  it('boots, takes the machine over (through its guest agent, before SSH opens), copies the folder with tar and provisions; nobody got in with the insecure key meanwhile', async () => {
    // Someone else on this host tries Vagrant's published key on the machine's SSH port,
    // as soon as the record names it and every half second, for the whole first boot.
    const insecure = await readFile(VAGRANT_KEY, 'utf8');
    const state = join(h.project(), '.vmfile/machines/default/machine.json');
    const attempts: string[] = [];
    let booting = true;
    const intruder = (async () => {
      while (booting) {
        const port = (JSON.parse(await readFile(state, 'utf8').catch(() => '{}')) as { sshPort?: number }).sshPort;
        if (port !== undefined) attempts.push(await login(port, 'vagrant', insecure));
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    })();
    const up = await h.ok('vmup').finally(() => (booting = false));
    await intruder;
    expect(attempts.length, 'the intruder tried during the boot').toBeGreaterThan(5);
    expect(attempts.filter((attempt) => attempt === 'ok')).toEqual([]);
    expect(up.stderr).toContain("Installing the machine's own keys through the guest agent");
    expect(up.stderr).toContain('copying folders with tar over SSH instead');
    expect(await h.guest('whoami; hostname; cat /vmfile/data.txt; cat /var/tmp/mark')).toBe('vagrant\nvagtest\nfrom the host\nonce');
    const machineDir = join(h.project(), '.vmfile/machines/default');
    const record = JSON.parse(await readFile(join(machineDir, 'machine.json'), 'utf8')) as Record<string, unknown>;
    expect(record['login']).toBeUndefined();
    // The guest presents the machine's own host key (vmssh pins it), and only that one.
    const hostKey = (await readFile(join(machineDir, 'ssh_host_ed25519_key.pub'), 'utf8')).split(' ').slice(0, 2).join(' ');
    expect(await h.guest('ls /etc/ssh/ | grep ssh_host_; cut -d" " -f1,2 /etc/ssh/ssh_host_ed25519_key.pub')).toBe(`ssh_host_ed25519_key\nssh_host_ed25519_key.pub\n${hostKey}`);
  });

  it('no longer lets Vagrant\'s insecure key in; the machine\'s own key still logs in', async () => {
    const machineDir = join(h.project(), '.vmfile/machines/default');
    const record = JSON.parse(await readFile(join(machineDir, 'machine.json'), 'utf8')) as { sshPort: number };
    const hostKey = Buffer.from((await readFile(join(machineDir, 'ssh_host_ed25519_key.pub'), 'utf8')).split(' ')[1] ?? '', 'base64');
    const insecure = await readFile(VAGRANT_KEY, 'utf8');
    const own = await readFile(join(machineDir, 'id_ed25519'), 'utf8');
    expect(await login(record.sshPort, 'vagrant', own, hostKey)).toBe('ok');
    expect(await login(record.sshPort, 'vagrant', insecure, hostKey)).toMatch(/authentication methods failed/i);
  });
});

/** box.json of the installed box, as `box list --json` shows it. */
async function boxMetadata(home: string, name: string): Promise<Record<string, unknown>> {
  const list = await cli('vmfile', ['box', 'list', '--json'], { cwd: home, env: { VMFILE_HOME: home } });
  const boxes = JSON.parse(list.stdout) as Record<string, unknown>[];
  const found = boxes.find((box) => box['name'] === name);
  if (found === undefined) throw new Error(`box ${name} is not in ${list.stdout}`);
  return found;
}

const VAGRANT_KEY = '/usr/share/rubygems-integration/all/gems/vagrant-2.3.4/keys/vagrant';

/**
 * One ssh2 login to 127.0.0.1:port: 'ok' or the error's message. With `hostKey`, only
 * that host key is accepted; without, any is, as an intruder would.
 */
function login(port: number, user: string, privateKey: string, hostKey?: Buffer): Promise<string> {
  return new Promise((resolve) => {
    const client = new Client();
    client
      .once('ready', () => {
        client.end();
        resolve('ok');
      })
      // ssh2 may report a lost connection more than once; the first answer counts.
      .on('error', (error) => resolve(error.message))
      .connect({
        host: '127.0.0.1',
        port,
        username: user,
        privateKey,
        readyTimeout: hostKey === undefined ? 5_000 : 20_000,
        hostVerifier: (key: Buffer) => hostKey === undefined || key.equals(hostKey),
      });
  });
}

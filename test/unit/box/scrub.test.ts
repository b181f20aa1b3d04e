/** Scrubbing runs the real e2fsprogs on a small ext4 image made with mke2fs -d. */
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { listDir } from '../../../src/box/debugfs.js';
import { fileSize } from '../../../src/box/debugfs.js';
import { homeFromPasswd, scrubImage, scrubPlan } from '../../../src/box/scrub.js';
import { run } from '../../../src/exec.js';
import { UserError } from '../../../src/errors.js';
import { tempDir } from '../temp-dir.js';

async function tree(root: string, files: Record<string, string>): Promise<void> {
  for (const [path, content] of Object.entries(files)) {
    await mkdir(join(root, path, '..'), { recursive: true });
    await writeFile(join(root, path), content);
  }
}

async function image(files: Record<string, string>, links: Record<string, string> = {}): Promise<string> {
  const dir = await tempDir();
  const root = join(dir, 'root');
  await tree(root, files);
  for (const [path, target] of Object.entries(links)) await symlink(target, join(root, path));
  const raw = join(dir, 'disk.raw');
  await run('mke2fs', ['-q', '-t', 'ext4', '-d', root, raw, '32M']);
  return raw;
}

const names = async (raw: string, dir: string) => (await listDir(raw, dir)).map((entry) => entry.name).sort();

describe('scrubImage', () => {
  test("removes the machine's keys, cloud-init state and identity, keeps everything else, and leaves a consistent file system", async () => {
    const raw = await image(
      {
        'etc/ssh/ssh_host_ed25519_key': 'PRIVATE',
        'etc/ssh/ssh_host_ed25519_key.pub': 'public',
        'etc/ssh/sshd_config': 'config',
        'etc/machine-id': '0123456789abcdef0123456789abcdef\n',
        'home/vm/.ssh/authorized_keys': 'ssh-ed25519 AAAA original',
        'home/vm/provisioned.txt': 'keep me',
        'root/.ssh/authorized_keys': 'no-port-forwarding ssh-ed25519 AAAA original',
        'var/lib/cloud/instances/vmfile-1/user-data.txt': 'ed25519_private: PRIVATE',
        'var/lib/cloud/instances/vmfile-1/sem/config_ssh': '',
        'var/lib/cloud/data/instance-id': 'vmfile-1',
        'var/lib/dhcp/dhclient.eth0.leases': 'lease',
        'var/log/journal/0123/system.journal': 'log',
        'var/log/cloud-init.log': 'log',
        'var/lib/systemd/random-seed': 'seed',
      },
      { 'var/lib/cloud/instance': '/var/lib/cloud/instances/vmfile-1' },
    );
    const removed = await scrubImage(raw, { user: 'vm', label: 'machine "default"' });
    expect(removed).toContain('/etc/ssh/ssh_host_ed25519_key');
    expect(removed).toContain('/var/lib/cloud/*');
    expect(await names(raw, '/etc/ssh')).toEqual(['sshd_config']);
    expect(await names(raw, '/home/vm')).toEqual(['.ssh', 'provisioned.txt']);
    expect(await names(raw, '/home/vm/.ssh')).toEqual([]);
    expect(await names(raw, '/root/.ssh')).toEqual([]);
    expect(await names(raw, '/var/lib/cloud')).toEqual([]);
    expect(await names(raw, '/var/lib/dhcp')).toEqual([]);
    expect(await names(raw, '/var/log/journal')).toEqual([]);
    expect(await names(raw, '/var/lib/systemd')).toEqual([]);
    expect(await fileSize(raw, '/etc/machine-id')).toBe(0);
    // e2fsck -n exits 0 only for a clean file system.
    await run('e2fsck', ['-fn', raw]);
  });

  test("the user's home comes from the image's /etc/passwd; the private network block leaves /etc/hosts", async () => {
    const hosts = '127.0.0.1 localhost\n# vmfile private network: begin\n10.10.0.11 web\n10.10.0.12 db\n# vmfile private network: end\n::1 localhost\n';
    const raw = await image({
      'etc/passwd': 'root:x:0:0:root:/root:/bin/bash\nvagrant:x:1000:1000::/srv/vagrant:/bin/bash\n',
      'etc/hosts': hosts,
      'srv/vagrant/.ssh/authorized_keys': 'ssh-ed25519 AAAA original',
      'srv/vagrant/.bash_history': 'cat secret',
      'srv/vagrant/work.txt': 'keep me',
    });
    const removed = await scrubImage(raw, { user: 'vagrant', label: 'm' });
    expect(removed).toEqual(['/srv/vagrant/.ssh/authorized_keys', '/srv/vagrant/.bash_history', '/etc/hosts (vmfile private network block)']);
    expect(await names(raw, '/srv/vagrant')).toEqual(['.ssh', 'work.txt']);
    const dir = await tempDir();
    await run('debugfs', ['-R', `dump /etc/hosts ${join(dir, 'hosts')}`, raw]);
    expect(await readFile(join(dir, 'hosts'), 'utf8')).toBe('127.0.0.1 localhost\n::1 localhost\n');
    await run('e2fsck', ['-fn', raw]);
  });

  test('an image that is already clean is left as it is', async () => {
    const raw = await image({ 'etc/ssh/sshd_config': 'config' });
    expect(await scrubImage(raw, { user: 'vm', label: 'm' })).toEqual([]);
  });

  test('a disk that is not a bare ext4 file system is refused, not shipped unscrubbed', async () => {
    const dir = await tempDir();
    const raw = join(dir, 'partitioned.raw');
    await writeFile(raw, Buffer.alloc(4096));
    await expect(scrubImage(raw, { user: 'vm', label: 'machine "default"' })).rejects.toThrow(UserError);
    await expect(scrubImage(raw, { user: 'vm', label: 'machine "default"' })).rejects.toThrow(/not a bare ext4 file system/);
  });
});

describe('homeFromPasswd', () => {
  test.each([
    ['vm:x:1000:1000::/home/vm:/bin/sh', '/home/vm'],
    ['vm:x:1000:1000::/srv/vm/:/bin/sh', '/srv/vm'],
    ['other:x:1000:1000::/srv/other:/bin/sh', '/home/vm'],
    ['vm:x:1000:1000::/home/../etc:/bin/sh', '/home/vm'],
    ['vm:x:1000:1000::relative:/bin/sh', '/home/vm'],
    ['vm:x:1000:1000::/:/bin/sh', '/home/vm'],
    ['vm:x:1000:1000::/home/vm\u0007x:/bin/sh', '/home/vm'],
    ['vm:broken', '/home/vm'],
  ])('%s -> %s', (line, home) => {
    expect(homeFromPasswd(`root:x:0:0:root:/root:/bin/bash\n${line}\n`, 'vm')).toBe(home);
  });
});

describe('scrubPlan', () => {
  test.each([
    ['vm', '/home/vm/.ssh/authorized_keys'],
    ['root', '/root/.ssh/authorized_keys'],
  ])('the login user %s has its authorized keys removed', (user, path) => {
    expect(scrubPlan(user).files).toContain(path);
  });
});

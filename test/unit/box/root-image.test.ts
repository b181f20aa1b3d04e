/**
 * What `mke2fs -d` could take from the build host does not reach a box's disk: one tree
 * made on ext4 with its own random hash seed, on tmpfs, on xfs and on btrfs (each
 * loop-mounted or mounted here, so this needs root, as box builds do), each time in
 * another creation order, with other inode numbers and at another time, gives the same
 * image byte for byte. The trees are really listed in different orders by the host
 * (checked), and a tree that differs in one modification time gives another image
 * (checked), so the comparison can fail.
 */
import { createHash } from 'node:crypto';
import { chmod, link, lutimes, mkdir, mkdtemp, opendir, readdir, realpath, readFile, rm, symlink, truncate, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { listDir } from '../../../src/box/debugfs.js';
import { makeRootImage } from '../../../src/box/root-image.js';
import { run } from '../../../src/exec.js';

const EPOCH = 1_700_000_000;
/** Package files keep their own dates, older than the epoch. */
const PACKAGE_TIME = 1_650_000_000;
const IMAGE = { uuid: '6c3c1a1e-3a51-4a8e-9f77-0d5b0c0b7e11', hashSeed: 'd3b5bd4e-0f1c-4a55-8e5b-2f7a9f0c4d21', size: 64 * 1024 * 1024, epoch: EPOCH, purpose: 'make a test image' };

/** Enough entries in one directory for ext4 to index it (an htree), and for hosts' orders to differ. */
const MANY = Array.from({ length: 400 }, (_, i) => `lib${(i * 7919) % 1000}.so.${i % 5}`);

interface Host {
  name: string;
  dir: string;
  order: (names: string[]) => string[];
}

/** A deterministic shuffle, so a failure reproduces. */
function shuffled(names: string[]): string[] {
  const out = [...names];
  let seed = 42;
  for (let i = out.length - 1; i > 0; i--) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    const j = seed % (i + 1);
    [out[i], out[j]] = [out[j] as string, out[i] as string];
  }
  return out;
}

/** The same tree every time, created in `order`, after junk files were made and removed so inode numbers differ by host. */
async function makeTree(root: string, order: (names: string[]) => string[], junk: number, mtime = PACKAGE_TIME): Promise<void> {
  await mkdir(root);
  for (let i = 0; i < junk; i++) await writeFile(join(root, `junk${i}`), 'x');
  for (let i = 0; i < junk; i++) await rm(join(root, `junk${i}`));
  for (const top of order(['usr', 'etc', 'var', 'boot'])) await mkdir(join(root, top));
  await mkdir(join(root, 'usr/lib'));
  for (const name of order(MANY)) await writeFile(join(root, 'usr/lib', name), `${name}\n`.repeat(name.length));
  for (const [name, content] of order(['passwd', 'group', 'hostname', 'fstab']).map((name) => [name, `${name} contents\n`] as const)) await writeFile(join(root, 'etc', name), content);
  await writeFile(join(root, 'boot/zeros'), Buffer.alloc(3 * 4096));
  await writeFile(join(root, 'var/sparse'), 'start');
  await truncate(join(root, 'var/sparse'), 1024 * 1024);
  await link(join(root, 'etc/passwd'), join(root, 'var/passwd-hardlink'));
  await symlink('../usr/lib', join(root, 'var/lib-link'));
  await writeFile(join(root, 'usr/setuid'), 'binary');
  await chmod(join(root, 'usr/setuid'), 0o4755);
  await chmod(join(root, 'etc/fstab'), 0o600);
  await chmod(join(root, 'var'), 0o750);
  // An access and a default ACL, as systemd gives /var/log/journal: xfs also lists them as trusted.SGI_ACL_* attributes.
  await run('setfacl', ['-m', 'g:adm:r-x', '-m', 'd:g:adm:r-x', join(root, 'var')]);
  await run('setfacl', ['-m', 'u:daemon:r--', join(root, 'etc/group')]);
  for (const path of ['usr/lib', 'etc', 'var', 'boot', 'usr', '.']) {
    for (const name of await readdir(join(root, path))) {
      const file = join(root, path, name);
      if (name === 'lib-link') await lutimes(file, mtime, mtime);
      else if (!['usr', 'etc', 'var', 'boot', 'lib'].includes(name)) await utimes(file, mtime, mtime);
    }
    await utimes(join(root, path), mtime, mtime);
  }
}

/** A directory's names in the order the host's file system gives them (Node's readdir sorts them). */
async function hostOrder(path: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of await opendir(path)) names.push(entry.name);
  return names;
}

async function sha256(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

describe('makeRootImage, whatever the build host', () => {
  let work: string;
  const mounts: string[] = [];
  const hosts: Host[] = [];

  async function mountFs(name: string, make: (device: string) => Promise<unknown>): Promise<string> {
    const dir = join(work, name);
    await mkdir(dir);
    if (name === 'tmpfs') {
      await run('mount', ['-t', 'tmpfs', '-o', 'size=256m', 'tmpfs', dir]);
    } else {
      const device = `${dir}.img`;
      await writeFile(device, '');
      await truncate(device, 512 * 1024 * 1024);
      await make(device);
      await run('mount', ['-o', 'loop', device, dir]);
    }
    mounts.push(dir);
    return dir;
  }

  beforeAll(async () => {
    expect(process.getuid?.(), 'this test mounts file systems: run it as root, as box builds are').toBe(0);
    work = await realpath(await mkdtemp(join(tmpdir(), 'vmfile-test-root-image-')));
    const seed = createHash('sha256').update(String(process.hrtime.bigint())).digest('hex');
    const otherSeed = `${seed.slice(0, 8)}-${seed.slice(8, 12)}-4${seed.slice(13, 16)}-8${seed.slice(17, 20)}-${seed.slice(20, 32)}`;
    hosts.push({ name: 'ext4', dir: await mountFs('ext4', (device) => run('mkfs.ext4', ['-q', '-E', `hash_seed=${otherSeed}`, device])), order: (names) => names });
    hosts.push({ name: 'tmpfs', dir: await mountFs('tmpfs', async () => undefined), order: (names) => [...names].reverse() });
    hosts.push({ name: 'xfs', dir: await mountFs('xfs', (device) => run('mkfs.xfs', ['-q', device])), order: shuffled });
    hosts.push({ name: 'btrfs', dir: await mountFs('btrfs', (device) => run('mkfs.btrfs', ['-q', device])), order: (names) => shuffled([...names].reverse()) });
  }, 60_000);

  afterAll(async () => {
    for (const dir of mounts) await run('umount', [dir]).catch(() => undefined);
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  test('gives the same image from the same tree on ext4 (another hash seed), tmpfs, xfs and btrfs', async () => {
    const digests = new Map<string, string>();
    const listings = new Map<string, string[]>();
    for (const [index, host] of hosts.entries()) {
      const tree = join(host.dir, 'rootfs');
      await makeTree(tree, host.order, 37 * index);
      listings.set(host.name, await hostOrder(join(tree, 'usr/lib')));
      const raw = join(work, `${host.name}.raw`);
      await makeRootImage(tree, raw, IMAGE);
      digests.set(host.name, await sha256(raw));
      // A second apart, so times taken from the clock would differ between hosts.
      await new Promise((resolve) => setTimeout(resolve, 1100));
    }
    // The hosts really listed the same directory in different orders.
    expect(new Set([...listings.values()].map((names) => names.join('\n'))).size).toBeGreaterThan(2);
    expect(Object.fromEntries(digests)).toEqual(Object.fromEntries(hosts.map((host) => [host.name, digests.get('ext4')])));
    // And the image holds the tree: every name, sorted, with the hard link and the ACLs kept.
    const raw = join(work, 'xfs.raw');
    expect((await listDir(raw, '/usr/lib')).map((entry) => entry.name).sort()).toEqual([...MANY].sort());
    const etc = await listDir(raw, '/etc');
    const vars = await listDir(raw, '/var');
    expect(vars.find((entry) => entry.name === 'passwd-hardlink')?.inode).toBe(etc.find((entry) => entry.name === 'passwd')?.inode);
    const attributes = (await run('debugfs', ['-R', 'ea_list /var', raw])).stdout;
    expect(attributes).toContain('system.posix_acl_access');
    expect(attributes).toContain('system.posix_acl_default');
    expect(attributes).not.toContain('trusted.');
    // No superblock copy keeps e2fsprogs' count of bytes written, and the file system is consistent.
    const superblocks = (await run('dumpe2fs', [raw])).stdout;
    expect(superblocks).not.toMatch(/Lifetime writes/);
    const backup = /Backup superblock at (\d+)/.exec(superblocks)?.[1] ?? expect.fail('no backup superblock');
    const blockSize = /Block size:\s+(\d+)/.exec(superblocks)?.[1] ?? expect.fail('no block size');
    expect((await run('dumpe2fs', ['-h', '-o', `superblock=${backup}`, '-o', `blocksize=${blockSize}`, raw])).stdout).not.toMatch(/Lifetime writes/);
    await run('e2fsck', ['-fn', raw]);
  }, 120_000);

  test('gives another image when one modification time differs, so the comparison above can fail', async () => {
    const host = hosts[0] as Host;
    const tree = join(host.dir, 'changed');
    await makeTree(tree, host.order, 0);
    await utimes(join(tree, 'etc/hostname'), PACKAGE_TIME + 1, PACKAGE_TIME + 1);
    const raw = join(work, 'changed.raw');
    await makeRootImage(tree, raw, IMAGE);
    expect(await sha256(raw)).not.toBe(await sha256(join(work, 'ext4.raw')));
  }, 60_000);
});

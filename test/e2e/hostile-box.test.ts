/**
 * `vmfile box add` of hostile boxes through the built CLI, in a store of its own (no VM
 * boots). Each box tries to pull a host file into the store; the host file holds a
 * marker, and afterwards no byte of the store may hold it. What a user checks: the exit
 * code, the message naming the problem, and `box list`.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, explain } from './cli.js';

let work: string;
let home: string;
let secret: string;
const marker = `VMFILE-E2E-HOST-SECRET-${randomBytes(8).toString('hex')}`;

const boxAdd = (name: string, file: string) => cli('vmfile', ['box', 'add', name, file], { cwd: work, env: { VMFILE_HOME: home }, timeoutMs: 120_000 });

function sh(cwd: string, command: string, ...args: string[]): void {
  execFileSync(command, args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Every file under `dir` whose bytes contain `needle`. */
async function filesContaining(dir: string, needle: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (path: string): Promise<void> => {
    const info = await lstat(path);
    if (info.isDirectory()) for (const entry of await readdir(path)) await walk(join(path, entry));
    else if (info.isFile() && (await readFile(path)).includes(needle)) found.push(path);
  };
  await walk(dir);
  return found;
}

async function boxDir(name: string): Promise<string> {
  const dir = join(work, name);
  await mkdir(dir);
  return dir;
}

async function vagrantMetadata(dir: string): Promise<void> {
  await writeFile(join(dir, 'metadata.json'), JSON.stringify({ provider: 'libvirt', format: 'qcow2', virtual_size: 1 }));
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'vmfile-e2e-hostile-'));
  home = join(work, 'home');
  await mkdir(home);
  // The host file a box must never reach: 1 MiB, so it can serve as a raw backing disk.
  secret = join(work, 'host-secret');
  const content = Buffer.alloc(1024 * 1024);
  content.write(`${marker}\n`);
  await writeFile(secret, content);
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('box add refuses a hostile box and the store holds nothing of the host', () => {
  it('a .box with a disk backed by /etc/shadow and a symbolic link to /etc/passwd is refused before anything is unpacked', async () => {
    const dir = await boxDir('links');
    await vagrantMetadata(dir);
    sh(dir, 'qemu-img', 'create', '-q', '-f', 'qcow2', '-u', '-b', '/etc/shadow', '-F', 'raw', 'box.img', '1M');
    await symlink('/etc/passwd', join(dir, 'passwd'));
    sh(dir, 'tar', '-czf', join(work, 'links.box'), './metadata.json', './box.img', './passwd');

    const result = await boxAdd('links', join(work, 'links.box'));
    expect(result.code, explain(result)).toBe(1);
    expect(result.stderr).toContain(`error: box links: ${join(work, 'links.box')} is not a box archive vmfile accepts: "./passwd" is a symbolic link to "/etc/passwd"`);
    expect(result.stderr).toContain('Nothing was unpacked and nothing was added');
    const passwdLine = (await readFile('/etc/passwd', 'utf8')).split('\n')[0] ?? 'root:';
    expect(await filesContaining(home, passwdLine)).toEqual([]);
  });

  it('a Vagrant .box whose box.img is backed by a host file is refused before qemu-img reads it', async () => {
    const dir = await boxDir('backing');
    await vagrantMetadata(dir);
    sh(dir, 'qemu-img', 'create', '-q', '-f', 'qcow2', '-b', secret, '-F', 'raw', 'box.img', '1M');
    sh(dir, 'tar', '-cf', join(work, 'backing.box'), './metadata.json', './box.img');

    const result = await boxAdd('backing', join(work, 'backing.box'));
    expect(result.code, explain(result)).toBe(1);
    expect(result.stderr).toContain(`error: box backing: ${join(work, 'backing.box')} (its box.img) is not a standalone disk image: it names a backing file "${secret}"`);
    expect(result.stderr).toContain('hint: a box must carry its whole disk');
  });

  it('a qcow2 image backed by a host file is refused', async () => {
    sh(work, 'qemu-img', 'create', '-q', '-f', 'qcow2', '-b', secret, '-F', 'raw', 'evil.qcow2', '1M');
    const result = await boxAdd('evil', join(work, 'evil.qcow2'));
    expect(result.code, explain(result)).toBe(1);
    expect(result.stderr).toContain('is not a standalone disk image: it names a backing file');
  });

  it('a vmfile box file whose box.json would put a ProxyCommand into ssh_config is refused', async () => {
    const dir = await boxDir('vmfile-box');
    sh(dir, 'qemu-img', 'create', '-q', '-f', 'qcow2', 'disk.qcow2', '1M');
    const sha256 = execFileSync('sha256sum', [join(dir, 'disk.qcow2')], { encoding: 'utf8' }).split(' ')[0];
    const metadata = {
      name: 'shared',
      version: '1',
      architecture: 'x86_64',
      disk: { file: 'disk.qcow2', format: 'qcow2', sha256, virtualSize: 1024 * 1024 },
      boot: { type: 'firmware', firmware: 'bios' },
      user: `vm\nProxyCommand sh -c 'cat ${secret}'`,
      created: '2026-11-28T00:00:00.000Z',
      source: { kind: 'package', machine: 'default', fromBox: 'debian-12 1' },
    };
    await writeFile(join(dir, 'box.json'), JSON.stringify(metadata));
    sh(dir, 'tar', '-cf', join(work, 'user.box'), 'box.json', 'disk.qcow2');

    const result = await boxAdd('user', join(work, 'user.box'));
    expect(result.code, explain(result)).toBe(1);
    expect(result.stderr).toContain('has an invalid box.json: user: expected a POSIX user name');
  });

  it('nothing was added, nothing is left in staging, and no file of the store holds the host file\'s marker', async () => {
    const list = await cli('vmfile', ['box', 'list', '--json'], { cwd: work, env: { VMFILE_HOME: home } });
    expect(list.code, explain(list)).toBe(0);
    expect(JSON.parse(list.stdout)).toEqual([]);
    expect(await readdir(join(home, 'tmp'))).toEqual([]);
    expect(await filesContaining(home, marker)).toEqual([]);
    // The check can fail: the marker is found where it is.
    expect(await filesContaining(work, marker)).toEqual([secret]);
  });

  it('a clean box still imports into the same store', async () => {
    const dir = await boxDir('clean');
    await vagrantMetadata(dir);
    sh(dir, 'qemu-img', 'create', '-q', '-f', 'qcow2', 'box.img', '1M');
    sh(dir, 'tar', '-czf', join(work, 'clean.box'), './metadata.json', './box.img');
    const result = await boxAdd('clean', join(work, 'clean.box'));
    expect(result.code, explain(result)).toBe(0);
    expect(result.stdout).toMatch(/^added box clean \S+ \(sha256:[0-9a-f]{64}\)/);
    expect(await filesContaining(home, marker)).toEqual([]);
  });
});

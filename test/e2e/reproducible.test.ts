/**
 * Reproducible environments through the built CLI, on real QEMU guests:
 * - Vmfile.lock is written by the first vmup and verified by the next; a box disk
 *   modified in place is refused with a message naming what differs, and nothing
 *   boots; `vmfile lock --update` accepts the new digest.
 * - `vmfile package` hands a provisioned machine over whole: the box file imports with
 *   `box add` under a new name, a second project boots from it and finds the provisioned
 *   file, with its own host key, machine-id and login key (the original's key is refused).
 *
 * Both tests use a private copy of the cached debian-12 box (VMFILE_HOME of their own):
 * one tampers with its disk and the other adds a box, and the shared cache must stay
 * exactly as it is.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { appendFile, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { cli, explain, makeProject } from './cli.js';

/** A private store holding a sparse copy of the newest cached debian-12 box. */
async function privateHome(): Promise<{ home: string; boxDir: string }> {
  const home = await mkdtemp(join(tmpdir(), 'vmfile-e2e-home-'));
  const shared = join(inject('vmfileHome'), 'boxes', 'debian-12');
  const versions = (await readdir(shared)).filter((name) => !name.includes('.removing-')).sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  const version = versions.at(-1);
  if (version === undefined) throw new Error(`no debian-12 box in ${shared}`);
  const boxDir = join(home, 'boxes', 'debian-12', version);
  await mkdir(join(home, 'boxes', 'debian-12'), { recursive: true });
  const copy = spawnSync('cp', ['-r', '--sparse=always', join(shared, version), boxDir]);
  if (copy.status !== 0) throw new Error(`copying the box failed: ${copy.stderr.toString()}`);
  return { home, boxDir };
}

async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

const vmfile = (box: string, provision = '[]') => `import { defineVm } from 'vmfile';
export default defineVm({ box: '${box}', cpus: 2, memory: '1GiB', disk: '4GiB', warmStart: false, provision: ${provision} });
`;

interface LockJson {
  lockVersion: number;
  machines: Record<string, { box: string; version: string; sha256: string; source: string; recipe?: { hash: string; sourceDateEpoch?: number } }>;
}

describe('Vmfile.lock', () => {
  let home: string;
  let boxDir: string;
  let project: string;
  const run = (bin: Parameters<typeof cli>[0], ...args: string[]) => cli(bin, args, { cwd: project, env: { VMFILE_HOME: home } });
  const lockText = () => readFile(join(project, 'Vmfile.lock'), 'utf8');

  beforeAll(async () => {
    ({ home, boxDir } = await privateHome());
    project = await makeProject(vmfile('debian-12'));
  });

  afterAll(async () => {
    await run('vmfile', 'destroy', '-f');
    await rm(project, { recursive: true, force: true });
    await rm(home, { recursive: true, force: true });
  });

  it('the first vmup writes Vmfile.lock with the box, its version and its disk digest', async () => {
    expect(existsSync(join(project, 'Vmfile.lock'))).toBe(false);
    const result = await run('vmup');
    expect(result.code, explain(result)).toBe(0);
    const text = await lockText();
    expect(text.endsWith('\n')).toBe(true);
    const lock = JSON.parse(text) as LockJson;
    const box = JSON.parse(await readFile(join(boxDir, 'box.json'), 'utf8')) as { version: string; disk: { sha256: string }; source: { recipeHash: string } };
    expect(lock.machines['default']).toMatchObject({ box: 'debian-12', version: box.version, sha256: box.disk.sha256, source: 'recipe', recipe: { hash: box.source.recipeHash } });
    expect(await sha256(join(boxDir, 'disk.qcow2'))).toBe(box.disk.sha256);
    // Suspended rather than halted: the next vmup checks the lock all the same, and a
    // resume takes seconds where a second boot would take a minute.
    expect((await run('vmfile', 'suspend')).code).toBe(0);
  });

  it('the next vmup verifies it and resumes the machine, leaving the file unchanged', async () => {
    const before = await lockText();
    const result = await run('vmup');
    expect(result.code, explain(result)).toBe(0);
    expect(result.stderr).toContain('Resuming from saved memory');
    expect(await lockText()).toBe(before);
    const check = await run('vmfile', 'lock');
    expect(check.code, explain(check)).toBe(0);
    expect(check.stdout).toMatch(/^default\s+verified\s+box debian-12 /m);
    expect((await run('vmhalt')).code).toBe(0);
  });

  it('a box disk modified in place is refused with what differs and how to update, and nothing boots', async () => {
    const before = await lockText();
    await appendFile(join(boxDir, 'disk.qcow2'), Buffer.alloc(65536, 0x55));
    const result = await run('vmup');
    expect(result.code, explain(result)).toBe(78);
    expect(result.stderr).toMatch(/machine "default": box debian-12 \S+ does not match \S*Vmfile\.lock/);
    expect(result.stderr).toContain('but the disk file now hashes to');
    expect(result.stderr).toContain('it was modified after the box was installed');
    expect(result.stderr).toContain('Nothing was created or booted.');
    expect(result.stderr).toContain('vmfile lock --update');
    expect(result.stderr).not.toContain('Starting QEMU');
    const status = await run('vmfile', 'status', '--json');
    expect((JSON.parse(status.stdout) as { status: string }[])[0]?.status).toBe('halted');
    expect(await lockText()).toBe(before);

    const check = await run('vmfile', 'lock');
    expect(check.code, explain(check)).toBe(78);
    expect(check.stdout).toMatch(/^default\s+mismatch/m);
  });

  it('vmfile lock --update accepts the new digest, and the lock verifies again', async () => {
    const update = await run('vmfile', 'lock', '--update');
    expect(update.code, explain(update)).toBe(0);
    const lock = JSON.parse(await lockText()) as LockJson;
    expect(lock.machines['default']?.sha256).toBe(await sha256(join(boxDir, 'disk.qcow2')));
    const check = await run('vmfile', 'lock');
    expect(check.code, explain(check)).toBe(0);
    expect(check.stdout).toMatch(/^default\s+verified/m);
  });
});

describe('vmfile package', () => {
  let home: string;
  let original: string;
  let copy: string;
  let work: string;
  const run = (dir: string, bin: Parameters<typeof cli>[0], ...args: string[]) => cli(bin, args, { cwd: dir, env: { VMFILE_HOME: home } });
  const guest = async (dir: string, command: string) => {
    const result = await run(dir, 'vmssh', '-c', command);
    expect(result.code, explain(result)).toBe(0);
    return result.stdout.trim();
  };
  let originalHostKey: string;
  let originalMachineId: string;

  beforeAll(async () => {
    ({ home } = await privateHome());
    work = await mkdtemp(join(tmpdir(), 'vmfile-e2e-package-'));
    original = await makeProject(vmfile('debian-12', `[{ name: 'data', shell: 'echo made by the original > /home/vm/provisioned.txt', privileged: false }]`));
    copy = await makeProject(vmfile('handed-over'));
  });

  afterAll(async () => {
    await run(original, 'vmfile', 'destroy', '-f');
    await run(copy, 'vmfile', 'destroy', '-f');
    for (const dir of [original, copy, work, home]) await rm(dir, { recursive: true, force: true });
  });

  it('provisions the original machine', async () => {
    const result = await run(original, 'vmup');
    expect(result.code, explain(result)).toBe(0);
    expect(await guest(original, 'cat /home/vm/provisioned.txt')).toBe('made by the original');
    originalHostKey = await guest(original, 'sudo cat /etc/ssh/ssh_host_ed25519_key.pub');
    expect(originalHostKey).toMatch(/^ssh-ed25519 /);
    originalMachineId = await guest(original, 'cat /etc/machine-id');
    expect(originalMachineId).toMatch(/^[0-9a-f]{32}$/);
  });

  it('refuses to package a running machine', async () => {
    const result = await run(original, 'vmfile', 'package', '--output', join(work, 'running.box'));
    expect(result.code, explain(result)).toBe(1);
    expect(result.stderr).toContain('machine "default" is running');
    expect(result.stderr).toContain('halt it first');
    expect(existsSync(join(work, 'running.box'))).toBe(false);
  });

  it('packages the halted machine into a box file without its keys or identity', async () => {
    expect((await run(original, 'vmhalt')).code).toBe(0);
    const result = await run(original, 'vmfile', 'package', '--output', join(work, 'env.box'), '--name', 'env', '--version', '1.0');
    expect(result.code, explain(result)).toBe(0);
    expect(result.stdout).toContain('/etc/ssh/ssh_host_ed25519_key');
    expect(result.stdout).toContain('/home/vm/.ssh/authorized_keys');
    expect(result.stdout).toContain('/var/lib/cloud/*');
    const listing = spawnSync('tar', ['-tf', join(work, 'env.box')]).stdout.toString().trim().split('\n');
    expect(listing).toEqual(['box.json', 'disk.qcow2', 'kernel', 'initrd']);
  });

  it("the packaged disk holds no byte of the original's private host key or login key, even in freed blocks", async () => {
    execFileSync('tar', ['-xf', join(work, 'env.box'), '-C', work, 'disk.qcow2']);
    execFileSync('qemu-img', ['convert', '-O', 'raw', join(work, 'disk.qcow2'), join(work, 'disk.raw')]);
    const keyFile = await readFile(join(original, '.vmfile/machines/default/ssh_host_ed25519_key'), 'utf8');
    // The first base64 lines of an OpenSSH key are a common header; the later ones are this key's own bytes.
    const hostKeyLines = keyFile.split('\n').filter((line) => /^[A-Za-z0-9+/=]{20,}$/.test(line)).slice(2);
    const loginKey = (await readFile(join(original, '.vmfile/machines/default/id_ed25519.pub'), 'utf8')).split(' ')[1] ?? '';
    const needles = [...hostKeyLines, loginKey];
    expect(needles.length).toBeGreaterThanOrEqual(2);
    // One pass over the disk for all of them (-o prints each one found).
    const found = spawnSync('grep', ['-o', '-a', '-F', ...needles.flatMap((needle) => ['-e', needle]), join(work, 'disk.raw')], { encoding: 'utf8' });
    expect(found.status, found.stderr).toBe(1);
    expect(found.stdout.trim(), 'key bytes found in the packaged disk').toBe('');
    // The search works: the same key is in the original machine's own disk.
    execFileSync('qemu-img', ['convert', '-O', 'raw', join(original, '.vmfile/machines/default/overlay.qcow2'), join(work, 'original.raw')]);
    expect(spawnSync('grep', ['-c', '-a', '-F', loginKey, join(work, 'original.raw')], { encoding: 'utf8' }).stdout.trim()).not.toBe('0');
    await rm(join(work, 'disk.raw'), { force: true });
    await rm(join(work, 'original.raw'), { force: true });
    await rm(join(work, 'disk.qcow2'), { force: true });
  });

  it('box add imports it under a new name with its manifest', async () => {
    const result = await run(work, 'vmfile', 'box', 'add', 'handed-over', join(work, 'env.box'));
    expect(result.code, explain(result)).toBe(0);
    const list = await run(work, 'vmfile', 'box', 'list', '--json');
    const boxes = JSON.parse(list.stdout) as { name: string; version: string; source: { kind: string; packages?: string[]; fromBox?: string } }[];
    const box = boxes.find((entry) => entry.name === 'handed-over');
    expect(box).toMatchObject({ version: '1.0', source: { kind: 'package' } });
    expect(box?.source.fromBox).toMatch(/^debian-12 /);
    expect(box?.source.packages).toEqual(expect.arrayContaining([expect.stringMatching(/^openssh-server /)]));
  });

  it('a second project boots from it and finds the provisioned file, with its own keys and identity', async () => {
    const result = await run(copy, 'vmup');
    expect(result.code, explain(result)).toBe(0);
    expect(await guest(copy, 'cat /home/vm/provisioned.txt')).toBe('made by the original');
    // vmup returns once SSH answers; cloud-init's last stage may still be finishing.
    expect(await guest(copy, 'cloud-init status --wait')).toMatch(/status: done$/);
    const hostKey = await guest(copy, 'sudo cat /etc/ssh/ssh_host_ed25519_key.pub');
    expect(hostKey).toMatch(/^ssh-ed25519 /);
    expect(hostKey).not.toBe(originalHostKey);
    const machineId = await guest(copy, 'cat /etc/machine-id');
    expect(machineId).toMatch(/^[0-9a-f]{32}$/);
    expect(machineId).not.toBe(originalMachineId);
    // Only the new machine's own login key is authorized.
    const ownKey = (await readFile(join(copy, '.vmfile/machines/default/id_ed25519.pub'), 'utf8')).trim().split(' ').slice(0, 2).join(' ');
    const authorized = (await guest(copy, 'cat ~/.ssh/authorized_keys')).split('\n').filter((line) => line.trim() !== '' && !line.startsWith('#'));
    expect(authorized.map((line) => line.split(' ').slice(0, 2).join(' '))).toEqual([ownKey]);
    expect(Number(await guest(copy, 'sudo ls /var/lib/cloud/instances | wc -l'))).toBe(1);
    expect(await guest(copy, 'sudo grep -rl "made by the original" /var/lib/cloud 2>/dev/null | wc -l')).toBe('0');
  });

  it("the original machine's private key cannot log in to the new one", async () => {
    const status = JSON.parse((await run(copy, 'vmfile', 'status', '--json')).stdout) as { ports: { host: number; guest: number }[] }[];
    const port = status[0]?.ports.find((entry) => entry.guest === 22)?.host;
    expect(port).toBeGreaterThan(0);
    const ssh = (key: string) =>
      spawnSync('ssh', ['-i', key, '-p', String(port), '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'ConnectTimeout=20', 'vm@127.0.0.1', 'true'], {
        encoding: 'utf8',
      });
    const withOld = ssh(join(original, '.vmfile/machines/default/id_ed25519'));
    expect(withOld.status, withOld.stderr).toBe(255);
    expect(withOld.stderr).toContain('Permission denied');
    // The same command with the new machine's key works, so the refusal is about the key.
    const withNew = ssh(join(copy, '.vmfile/machines/default/id_ed25519'));
    expect(withNew.status, withNew.stderr).toBe(0);
  });
});

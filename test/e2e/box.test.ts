/** box add/list/remove through the CLI with real qemu-img images (no boot needed). */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, explain } from './cli.js';

describe('box import', () => {
  let work: string;
  let home: string;
  let image: string;
  const run = (...args: string[]) => cli('vmfile', ['box', ...args], { cwd: work, env: { VMFILE_HOME: home } });

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'vmfile-box-'));
    home = join(work, 'home');
    image = join(work, 'cloud.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', image, '64M']);
  });
  afterAll(async () => rm(work, { recursive: true, force: true }));

  it('a checksum mismatch is refused and leaves the store as it was', async () => {
    const result = await run('add', 'cloud', image, '--checksum', `sha256:${'0'.repeat(64)}`);
    expect(result.code, explain(result)).toBe(1);
    expect(result.stderr).toContain('checksum mismatch');
    expect(result.stderr).toContain('nothing was added');
    const list = await run('list', '--json');
    expect(JSON.parse(list.stdout)).toEqual([]);
  });

  it('imports a qcow2 image whose checksum matches', async () => {
    const digest = createHash('sha256').update(await readFile(image)).digest('hex');
    const result = await run('add', 'cloud', image, '--checksum', `sha256:${digest}`, '--version', '1.0');
    expect(result.code, explain(result)).toBe(0);
    const [box] = JSON.parse((await run('list', '--json')).stdout) as { name: string; version: string; disk: { virtualSize: number } }[];
    expect(box).toMatchObject({ name: 'cloud', version: '1.0', disk: { virtualSize: 64 * 1024 * 1024 } });
  });

  it('imports a Vagrant libvirt .box (tar with metadata.json and box.img)', async () => {
    const boxDir = join(work, 'vagrant');
    await mkdir(boxDir);
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', join(boxDir, 'box.img'), '32M']);
    await writeFile(join(boxDir, 'metadata.json'), JSON.stringify({ provider: 'libvirt', format: 'qcow2', virtual_size: 1 }));
    const boxFile = join(work, 'test.box');
    execFileSync('tar', ['-czf', boxFile, '-C', boxDir, 'metadata.json', 'box.img']);
    const result = await run('add', 'vagrant-box', boxFile, '--version', '2.0');
    expect(result.code, explain(result)).toBe(0);
    const list = await run('list');
    expect(list.stdout).toMatch(/vagrant-box\s+2\.0\s+32MiB/);
  });

  it('refuses a file that is neither an image nor a box', async () => {
    const junk = join(work, 'junk.txt');
    await writeFile(junk, 'not an image');
    const result = await run('add', 'junk', junk);
    expect(result.code, explain(result)).toBe(1);
    expect(result.stderr).toContain('neither a qcow2 image nor a Vagrant .box');
  });

  it('removes a box', async () => {
    const result = await run('remove', 'cloud');
    expect(result.code, explain(result)).toBe(0);
    const names = (JSON.parse((await run('list', '--json')).stdout) as { name: string }[]).map((b) => b.name);
    expect(names).toEqual(['vagrant-box']);
    const again = await run('remove', 'cloud');
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('box cloud is not installed');
  });
});

/** A vmfile box file round trip: written as `vmfile package` does, imported by `box add`, with small real qcow2 images. */
import { appendFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { archiveMembers, writeBoxArchive } from '../../../src/box/archive.js';
import { sha256File } from '../../../src/store/digest.js';
import { addBox } from '../../../src/box/import.js';
import type { BoxMetadata } from '../../../src/vmfile/box-metadata.js';
import { run } from '../../../src/exec.js';
import { UserError } from '../../../src/errors.js';
import { tempDir } from '../temp-dir.js';

async function boxDir(options: { corruptDisk?: boolean; kernel?: string } = {}): Promise<{ dir: string; metadata: BoxMetadata }> {
  const dir = await tempDir();
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', join(dir, 'disk.qcow2'), '64M']);
  await writeFile(join(dir, 'kernel'), 'a kernel');
  await writeFile(join(dir, 'initrd'), 'an initrd');
  const metadata: BoxMetadata = {
    name: 'analysis',
    version: '2026.11.5',
    architecture: 'x86_64',
    disk: { file: 'disk.qcow2', format: 'qcow2', sha256: await sha256File(join(dir, 'disk.qcow2')), virtualSize: 64 * 1024 ** 2 },
    boot: { type: 'kernel', kernel: options.kernel ?? 'kernel', initrd: 'initrd', cmdline: 'root=/dev/vda rw' },
    user: 'vm',
    created: '2026-11-05T00:00:00.000Z',
    source: { kind: 'package', machine: 'default', fromBox: 'debian-12 2026.11.1', packages: ['bash 5.2', 'r-base-core 4.2'] },
  };
  await writeFile(join(dir, 'box.json'), JSON.stringify(metadata));
  if (options.corruptDisk === true) await appendFile(join(dir, 'disk.qcow2'), 'x');
  return { dir, metadata };
}

describe('vmfile box files', () => {
  test('box.json comes first, then the disk, kernel and initrd', async () => {
    const { metadata } = await boxDir();
    expect(archiveMembers(metadata)).toEqual(['box.json', 'disk.qcow2', 'kernel', 'initrd']);
    expect(archiveMembers({ ...metadata, boot: { type: 'firmware', firmware: 'bios' } })).toEqual(['box.json', 'disk.qcow2']);
  });

  test('the same box makes the same file', async () => {
    const { dir, metadata } = await boxDir();
    const out = await tempDir();
    await writeBoxArchive(dir, metadata, join(out, 'a.box'), { mtime: 1_700_000_000 });
    await writeBoxArchive(dir, metadata, join(out, 'b.box'), { mtime: 1_700_000_000 });
    expect(await sha256File(join(out, 'a.box'))).toBe(await sha256File(join(out, 'b.box')));
  });

  test('box add imports it under the new name, keeping its version, boot, user, manifest and disk digest', async () => {
    const { dir, metadata } = await boxDir();
    const out = await tempDir();
    const home = await tempDir();
    await writeBoxArchive(dir, metadata, join(out, 'analysis.box'), { mtime: 1_700_000_000 });

    const box = await addBox({ home, name: 'handed-over', file: join(out, 'analysis.box') });

    expect(box.metadata).toMatchObject({
      name: 'handed-over',
      version: '2026.11.5',
      boot: { type: 'kernel', kernel: 'kernel', initrd: 'initrd', cmdline: 'root=/dev/vda rw' },
      user: 'vm',
      disk: { sha256: metadata.disk.sha256 },
      source: { kind: 'package', machine: 'default', fromBox: 'debian-12 2026.11.1', packages: ['bash 5.2', 'r-base-core 4.2'], importedFrom: 'analysis.box' },
    });
    expect(await sha256File(box.paths.disk)).toBe(metadata.disk.sha256);
    expect(await readFile(box.paths.kernel, 'utf8')).toBe('a kernel');
    expect(await readFile(box.paths.initrd, 'utf8')).toBe('an initrd');
  });

  test('--version overrides the version in the box file', async () => {
    const { dir, metadata } = await boxDir();
    const out = await tempDir();
    await writeBoxArchive(dir, metadata, join(out, 'a.box'), { mtime: 1 });
    const box = await addBox({ home: await tempDir(), name: 'x', file: join(out, 'a.box'), version: '9' });
    expect(box.metadata.version).toBe('9');
  });

  test.each([
    ['a disk that does not match its box.json digest', { corruptDisk: true }, /the sha256 of the disk disk\.qcow2 is [0-9a-f]{64}, but its box\.json records/],
    ['a box.json naming a kernel outside the box', { kernel: '../../etc/passwd' }, /has an invalid box\.json: boot\.kernel: expected a plain file name/],
  ])('%s is refused and nothing is added', async (_label, options, message) => {
    const { dir, metadata } = await boxDir(options);
    const out = await tempDir();
    const home = await tempDir();
    await writeBoxArchive(dir, metadata, join(out, 'bad.box'), { mtime: 1 });
    const error = await addBox({ home, name: 'bad', file: join(out, 'bad.box') }).catch((reason: unknown) => reason);
    expect(error).toBeInstanceOf(UserError);
    expect((error as UserError).message).toMatch(message);
    await mkdir(join(home, 'boxes'), { recursive: true });
    expect((await run('ls', ['-A', join(home, 'boxes')])).stdout).toBe('');
  });
});

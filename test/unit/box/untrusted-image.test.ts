/** Images from outside: real qcow2 headers made by qemu-img, read before qemu-img opens them, and qemu-img info's view. */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { checkStandaloneImage, imageInfoProblems, qcow2HeaderProblems } from '../../../src/box/untrusted-image.js';
import { UserError } from '../../../src/errors.js';
import { tempDir } from '../temp-dir.js';
import { cleanQcow2, hostSecret, qcow2WithBacking, qcow2WithDataFile, qemuImg } from './hostile.js';

const origin = { box: 'evil', file: '/downloads/evil.qcow2' };

async function refusal(promise: Promise<unknown>): Promise<UserError> {
  const error: unknown = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  if (!(error instanceof UserError)) throw new Error(`expected a UserError, got ${String(error)}`);
  return error;
}

describe('qcow2HeaderProblems on headers qemu-img wrote', () => {
  test.each<[string, (dir: string, secret: string) => Promise<void> | void, string[]]>([
    ['a clean qcow2 v3 image', (dir) => cleanQcow2(join(dir, 'i')), []],
    ['a clean qcow2 v2 image (compat=0.10)', (dir) => qemuImg('create', '-q', '-f', 'qcow2', '-o', 'compat=0.10', join(dir, 'i'), '1M'), []],
    ['a backing file on the host', (dir, secret) => qcow2WithBacking(join(dir, 'i'), secret, 'raw'), ['it names a backing file "SECRET"']],
    ['/etc/passwd as backing file', (dir) => qcow2WithBacking(join(dir, 'i'), '/etc/passwd', 'raw'), ['it names a backing file "/etc/passwd"']],
    ['a fat: directory as backing file', (dir) => qcow2WithBacking(join(dir, 'i'), 'fat:/etc', 'vvfat'), ['it names a backing file "fat:/etc"']],
    ['a json: backing file', (dir) => qcow2WithBacking(join(dir, 'i'), 'json:{"driver":"raw","file":{"driver":"file","filename":"/etc/passwd"}}', 'raw'), [
      'it names a backing file "json:{\\"driver\\":\\"raw\\",\\"file\\":{\\"driver\\":\\"file\\",\\"filename\\":\\"/etc/passwd\\"}}"',
    ]],
    [
      'an external data file',
      (dir) => qcow2WithDataFile(join(dir, 'i'), join(dir, 'data'), Buffer.alloc(1024 * 1024)),
      ['it keeps its data in an external data file', 'it names an external data file "DIR/data"'],
    ],
  ])('%s', async (_label, make, problems) => {
    const dir = await tempDir();
    const { path: secret } = await hostSecret(dir);
    await make(dir, secret);
    const header = await readFile(join(dir, 'i'));
    expect(qcow2HeaderProblems(header)).toEqual(problems.map((p) => p.replace('SECRET', secret).replace('DIR', dir)));
  });

  test('a header cut short or without the magic is not a qcow2 image', () => {
    expect(qcow2HeaderProblems(Buffer.from([0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 3]))).toEqual(['its qcow2 header is missing or cut short']);
    expect(qcow2HeaderProblems(Buffer.alloc(512))).toEqual(['its qcow2 header is missing or cut short']);
  });

  test('qcow version 1 is refused, whatever follows', () => {
    const header = Buffer.alloc(512);
    header.writeUInt32BE(0x514649fb, 0);
    header.writeUInt32BE(1, 4);
    expect(qcow2HeaderProblems(header)).toEqual(['it is qcow2 version 1, which vmfile does not read']);
  });
});

describe('imageInfoProblems', () => {
  test.each([
    [{ format: 'qcow2', virtualSize: 1, actualSize: 1 }, 'qcow2', []],
    [{ format: 'raw', virtualSize: 1, actualSize: 1 }, 'raw', []],
    [{ format: 'vmdk', virtualSize: 1, actualSize: 1 }, 'qcow2', ['qemu-img reads it as vmdk, not qcow2']],
    [{ format: 'qcow2', virtualSize: 1, actualSize: 1, backingFile: 'x', fullBackingFile: '/images/x' }, 'qcow2', ['it names a backing file "/images/x"']],
    [{ format: 'qcow2', virtualSize: 1, actualSize: 1, backingFile: 'fat:/home' }, 'qcow2', ['it names a backing file "fat:/home"']],
    [{ format: 'qcow2', virtualSize: 1, actualSize: 1, dataFile: '/etc/shadow' }, 'qcow2', ['it names an external data file "/etc/shadow"']],
    [{ format: 'qcow2', virtualSize: 1, actualSize: 1, backingFile: '/a\nb' }, 'qcow2', ['it names a backing file "/a?b"']],
  ] as const)('%j as %s', (info, format, problems) => {
    expect(imageInfoProblems(info, format)).toEqual(problems);
  });
});

describe('checkStandaloneImage', () => {
  test('a clean qcow2 image passes with its facts', async () => {
    const dir = await tempDir();
    cleanQcow2(join(dir, 'i'));
    expect(await checkStandaloneImage(join(dir, 'i'), 'qcow2', origin)).toMatchObject({ format: 'qcow2', virtualSize: 1024 * 1024 });
  });

  test('a raw image is opened as raw, even when it starts like a qcow2 image with a backing file', async () => {
    const dir = await tempDir();
    qcow2WithBacking(join(dir, 'i'), '/etc/passwd', 'raw');
    const info = await checkStandaloneImage(join(dir, 'i'), 'raw', origin);
    expect(info).toMatchObject({ format: 'raw' });
    expect(info.backingFile).toBeUndefined();
  });

  test.each<[string, (dir: string) => Promise<void> | void, RegExp]>([
    ['a backing file', (dir) => qcow2WithBacking(join(dir, 'i'), '/etc/passwd', 'raw'), /it names a backing file "\/etc\/passwd"/],
    ['a fat: backing file', (dir) => qcow2WithBacking(join(dir, 'i'), 'fat:/root', 'vvfat'), /it names a backing file "fat:\/root"/],
    ['an external data file', (dir) => qcow2WithDataFile(join(dir, 'i'), join(dir, 'data'), Buffer.alloc(1024 * 1024)), /it keeps its data in an external data file/],
  ])('%s is refused naming the box, the file and the problem', async (_label, make, problem) => {
    const dir = await tempDir();
    await make(dir);
    const error = await refusal(checkStandaloneImage(join(dir, 'i'), 'qcow2', { ...origin, member: 'box.img' }));
    expect(error.message).toMatch(/^box evil: \/downloads\/evil\.qcow2 \(its box\.img\) is not a standalone disk image: /);
    expect(error.message).toMatch(problem);
    expect(error.exitCode).toBe(1);
    expect(error.hint).toContain('qemu-img convert');
  });

  test('garbage after the qcow2 magic is a UserError from qemu-img, not a crash', async () => {
    const dir = await tempDir();
    const header = Buffer.alloc(4096, 0xff);
    header.writeUInt32BE(0x514649fb, 0);
    header.writeUInt32BE(3, 4);
    header.writeBigUInt64BE(0n, 8);
    header.writeUInt32BE(0, 16);
    header.writeUInt32BE(0, 32);
    header.writeBigUInt64BE(0n, 72);
    header.writeUInt32BE(104, 100);
    header.writeUInt32BE(0, 104);
    await writeFile(join(dir, 'i'), header);
    const error = await refusal(checkStandaloneImage(join(dir, 'i'), 'qcow2', origin));
    expect(error.message).toMatch(/^box evil: \/downloads\/evil\.qcow2 cannot be read as a qcow2 image: /);
  });
});

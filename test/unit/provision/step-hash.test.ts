/**
 * A step's hash keys its provisioning layer, which machines of every project on the host
 * share: it must cover exactly what the step uploads (files behind symlinks included, as
 * the upload follows them), framed so that two different trees never read alike, with
 * the modes the upload gives the files.
 */
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { ConfigError } from '../../../src/errors.js';
import { stepHash } from '../../../src/provision/runner.js';
import { normalizeStep, stepInputSchema } from '../../../src/vmfile/steps.js';
import { tempDir } from '../temp-dir.js';

const fileStep = (source: string) => normalizeStep(stepInputSchema.parse({ name: 'conf', file: { source, destination: '/etc/app' } }), 0);

describe('the hash of a file step', () => {
  test('a source that is a symlink is keyed by what it points to', async () => {
    const dir = await tempDir();
    const elsewhere = await tempDir();
    await writeFile(join(elsewhere, 'app.conf'), 'one');
    await symlink(join(elsewhere, 'app.conf'), join(dir, 'conf'));
    const before = await stepHash(fileStep('conf'), dir);

    await writeFile(join(elsewhere, 'app.conf'), 'two');

    expect(await stepHash(fileStep('conf'), dir)).not.toBe(before);
  });

  test('a symlink inside a source directory is keyed by what it points to, file or directory', async () => {
    const dir = await tempDir();
    const elsewhere = await tempDir();
    await mkdir(join(dir, 'conf'));
    await mkdir(join(elsewhere, 'sub'));
    await writeFile(join(elsewhere, 'secret'), 'one');
    await writeFile(join(elsewhere, 'sub', 'x'), 'one');
    await symlink(join(elsewhere, 'secret'), join(dir, 'conf', 'link'));
    await symlink(join(elsewhere, 'sub'), join(dir, 'conf', 'tree'));
    const before = await stepHash(fileStep('conf'), dir);

    await writeFile(join(elsewhere, 'secret'), 'two');
    const afterFile = await stepHash(fileStep('conf'), dir);
    await writeFile(join(elsewhere, 'sub', 'x'), 'two');

    expect(afterFile).not.toBe(before);
    expect(await stepHash(fileStep('conf'), dir)).not.toBe(afterFile);
  });

  test('file contents are framed: a="X\\0b\\0Y" is not a="X", b="Y"', async () => {
    const one = await tempDir();
    const two = await tempDir();
    await mkdir(join(one, 'conf'));
    await mkdir(join(two, 'conf'));
    await writeFile(join(one, 'conf', 'a'), 'X\0b\0Y');
    await writeFile(join(two, 'conf', 'a'), 'X');
    await writeFile(join(two, 'conf', 'b'), 'Y');
    await Promise.all([chmod(join(one, 'conf', 'a'), 0o644), chmod(join(two, 'conf', 'a'), 0o644), chmod(join(two, 'conf', 'b'), 0o644)]);

    expect(await stepHash(fileStep('conf'), one)).not.toBe(await stepHash(fileStep('conf'), two));
  });

  test('a file that becomes executable changes the hash, as the upload keeps modes', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'tool'), '#!/bin/sh\n', { mode: 0o644 });
    const before = await stepHash(fileStep('tool'), dir);

    await chmod(join(dir, 'tool'), 0o755);

    expect(await stepHash(fileStep('tool'), dir)).not.toBe(before);
  });

  test('a FIFO in the source is a ConfigError naming it, not a hang', async () => {
    const dir = await tempDir();
    await mkdir(join(dir, 'conf'));
    execFileSync('mkfifo', [join(dir, 'conf', 'pipe')]);

    const error = await stepHash(fileStep('conf'), dir).catch((reason: unknown) => reason);

    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toContain(join(dir, 'conf', 'pipe'));
  }, 5000);

  test('a symlink loop is a ConfigError, not endless work', async () => {
    const dir = await tempDir();
    await mkdir(join(dir, 'conf'));
    await symlink('..', join(dir, 'conf', 'up'));

    const error = await stepHash(fileStep('conf'), dir).catch((reason: unknown) => reason);

    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(/loop/);
  }, 5000);
});

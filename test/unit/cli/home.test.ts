/**
 * vmfile's home holds what machines of every project start from (box disks, warm
 * memory): one that someone else owns or may write is refused by every command, where
 * the home is resolved (cli/command.ts).
 */
import { chmod, chown, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '@oclif/core';
import { afterEach, describe, expect, test } from 'vitest';
import { VmfileCommand } from '../../../src/cli/command.js';
import { ConfigError } from '../../../src/errors.js';
import { tempDir } from '../temp-dir.js';

class Probe extends VmfileCommand {
  async run(): Promise<void> {}

  home(): string {
    return this.context().home;
  }
}

const saved = process.env['VMFILE_HOME'];
afterEach(() => {
  if (saved === undefined) delete process.env['VMFILE_HOME'];
  else process.env['VMFILE_HOME'] = saved;
});

function homeFor(dir: string): string | Error {
  process.env['VMFILE_HOME'] = dir;
  try {
    return new Probe([], {} as Config).home();
  } catch (error) {
    return error as Error;
  }
}

describe("vmfile's home", () => {
  test('one of the user, not writable by others, is used; so is a missing one (whatever makes it makes it 0700)', async () => {
    const dir = await tempDir();
    await chmod(dir, 0o755);
    expect(homeFor(dir)).toBe(dir);
    const fresh = join(dir, 'new-home');
    expect(homeFor(fresh)).toBe(fresh);
  });

  test.each([
    ['the home', ''],
    ['its boxes/', 'boxes'],
    ['its warm/', 'warm'],
    ['its tmp/', 'tmp'],
  ])('%s writable by group or others is a ConfigError naming it, with the fix', async (_what, sub) => {
    const home = await tempDir();
    const dir = join(home, sub);
    await mkdir(dir, { recursive: true });
    await chmod(dir, 0o777);
    const error = homeFor(home);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toContain(`${dir.replace(/\/$/, '')} is writable by others`);
    expect((error as ConfigError).hint).toContain(`chmod go-w ${dir.replace(/\/$/, '')}`);
  });

  test('a home owned by another user is a ConfigError naming it', async () => {
    const home = await tempDir();
    await chmod(home, 0o700);
    await chown(home, 4242, 4242);
    const error = homeFor(home);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toContain(`${home} is owned by uid 4242`);
  });
});

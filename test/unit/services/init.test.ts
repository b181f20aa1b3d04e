import { execFileSync } from 'node:child_process';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { ConfigError, UserError } from '../../../src/errors.js';
import { loadProject } from '../../../src/project/load.js';
import { init } from '../../../src/services/init.js';
import { tempDir } from '../temp-dir.js';

describe('vmfile init', () => {
  test('writes a Vmfile that loads and validates, with the box asked for, and a .gitignore for .vmfile/', async () => {
    const dir = await tempDir();
    const result = await init({ dir, box: 'my-box' });
    expect(result).toEqual({ vmfile: join(dir, 'Vmfile.ts'), gitignore: 'created', tsconfig: 'created' });
    const project = await loadProject({ cwd: dir });
    expect(project.machines.map((machine) => [machine.name, machine.box.name, machine.cpus, machine.provision.map((step) => step.name)])).toEqual([['default', 'my-box', 2, ['hello']]]);
    expect(await readFile(join(dir, '.gitignore'), 'utf8')).toContain('\n.vmfile/\n');
  });

  test("keeps a project's own tsconfig.json, and writes .vmfile/tsconfig.json for it to extend", async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'tsconfig.json'), '{"compilerOptions":{}}');
    expect((await init({ dir })).tsconfig).toBe('kept');
    expect(await readFile(join(dir, 'tsconfig.json'), 'utf8')).toBe('{"compilerOptions":{}}');
    expect(JSON.parse(await readFile(join(dir, '.vmfile', 'tsconfig.json'), 'utf8'))).toMatchObject({ include: ['../Vmfile.ts'] });
  });

  test('a tsconfig.json that already extends .vmfile/tsconfig.json is there already', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'tsconfig.json'), '{ "extends": "./.vmfile/tsconfig.json", "compilerOptions": {} }');
    expect((await init({ dir })).tsconfig).toBe('already there');
  });

  test('never overwrites an existing Vmfile (exit 1), and leaves .gitignore alone then', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'Vmfile.ts'), 'mine');
    const error = await init({ dir }).catch((reason: unknown) => reason);
    expect(error).toBeInstanceOf(UserError);
    expect((error as UserError).exitCode).toBe(1);
    expect((error as UserError).message).toBe(`${join(dir, 'Vmfile.ts')} already exists; vmfile init does not overwrite it`);
    expect(await readFile(join(dir, 'Vmfile.ts'), 'utf8')).toBe('mine');
    await expect(readFile(join(dir, '.gitignore'))).rejects.toThrow(/ENOENT/);
  });

  test.each([
    ['node_modules/\ndist', 'added', 'node_modules/\ndist\n# vmfile: machine state and private keys\n.vmfile/\n'],
    ['node_modules/\n', 'added', 'node_modules/\n# vmfile: machine state and private keys\n.vmfile/\n'],
    ['dist/\n/.vmfile\n', 'already there', 'dist/\n/.vmfile\n'],
    ['.vmfile/\r\n', 'already there', '.vmfile/\r\n'],
  ])('an existing .gitignore %j: %s', async (before, outcome, after) => {
    const dir = await tempDir();
    await writeFile(join(dir, '.gitignore'), before);
    expect((await init({ dir })).gitignore).toBe(outcome);
    expect(await readFile(join(dir, '.gitignore'), 'utf8')).toBe(after);
  });

  test('a box name that is not one is a configuration error naming --box, and writes nothing', async () => {
    const dir = await tempDir();
    const error = await init({ dir, box: "x'; process.exit(1); '" }).catch((reason: unknown) => reason);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toMatch(/^--box: /);
    await expect(readFile(join(dir, 'Vmfile.ts'))).rejects.toThrow(/ENOENT/);
  });

  /** Makes `dir` unwritable even for root (immutable), or by its mode for anyone else; returns the undo. */
  async function unwritable(dir: string): Promise<() => Promise<void>> {
    if (process.getuid?.() === 0) {
      execFileSync('chattr', ['+i', dir]);
      return async () => void execFileSync('chattr', ['-i', dir]);
    }
    await chmod(dir, 0o555);
    return () => chmod(dir, 0o755);
  }

  test('a directory that cannot be written is a UserError naming it (exit 1), not a crash', async () => {
    const dir = await tempDir();
    const undo = await unwritable(dir);
    try {
      const error = await init({ dir }).catch((reason: unknown) => reason);
      expect(error).toBeInstanceOf(UserError);
      expect((error as UserError).exitCode).toBe(1);
      expect((error as UserError).message).toContain(join(dir, 'Vmfile.ts'));
    } finally {
      await undo();
    }
  });

  test('a directory that is a file is a UserError too', async () => {
    const file = join(await tempDir(), 'plain');
    await writeFile(file, '');
    const error = await init({ dir: file }).catch((reason: unknown) => reason);
    expect(error).toBeInstanceOf(UserError);
  });

  test.each([
    ['a directory', (path: string) => mkdir(path)],
    ['a FIFO', async (path: string) => void execFileSync('mkfifo', [path])],
  ])('a .gitignore that is %s is a ConfigError naming it, before the Vmfile is written', async (_what, make) => {
    const dir = await tempDir();
    await make(join(dir, '.gitignore'));
    const error = await init({ dir }).catch((reason: unknown) => reason);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toContain(join(dir, '.gitignore'));
    await expect(readFile(join(dir, 'Vmfile.ts'))).rejects.toThrow(/ENOENT/);
  }, 5000);
});

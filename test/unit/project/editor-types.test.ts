import { existsSync } from 'node:fs';
import { readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { ConfigError } from '../../../src/errors.js';
import { editorTsconfig, editorTypesSource, projectTsconfig, PROJECT_TSCONFIG_EXTENDS, writeEditorTsconfig } from '../../../src/project/editor-types.js';
import { tempDir } from '../temp-dir.js';

describe('editor types', () => {
  const source = { declarations: '/opt/vmfile/dist/index.d.ts', typeRoot: '/opt/vmfile/node_modules/@types' };

  test("maps 'vmfile' to the running copy's declarations and Node's globals to its @types/node", () => {
    const config = JSON.parse(editorTsconfig('Vmfile.ts', source)) as { compilerOptions: Record<string, unknown>; include: string[] };
    expect(config.compilerOptions).toMatchObject({ strict: true, noEmit: true, paths: { vmfile: ['/opt/vmfile/dist/index.d.ts'] }, typeRoots: ['/opt/vmfile/node_modules/@types'], types: ['node'] });
    expect(config.include).toEqual(['../Vmfile.ts']);
  });

  test('a Vmfile of another name is included too; without @types/node no global types are asked for', () => {
    const config = JSON.parse(editorTsconfig('lab.ts', { ...source, typeRoot: undefined })) as { compilerOptions: Record<string, unknown>; include: string[] };
    expect(config.include).toEqual(['../Vmfile.ts', '../lab.ts']);
    expect(config.compilerOptions['types']).toEqual([]);
    expect(config.compilerOptions).not.toHaveProperty('typeRoots');
  });

  test('the running copy finds its own declarations and @types/node', () => {
    const found = editorTypesSource();
    expect(existsSync(found.declarations), found.declarations).toBe(true);
    expect(found.typeRoot).toBeDefined();
    expect(existsSync(join(found.typeRoot ?? '', 'node', 'index.d.ts'))).toBe(true);
  });

  test('is written into .vmfile/ when it differs, and left untouched when it is the same', async () => {
    const dir = await tempDir();
    const vmfile = join(dir, 'Vmfile.ts');
    const written = join(dir, '.vmfile', 'tsconfig.json');
    await writeEditorTsconfig(vmfile, source);
    expect(await readFile(written, 'utf8')).toBe(editorTsconfig('Vmfile.ts', source));
    expect((await stat(join(dir, '.vmfile'))).mode & 0o777).toBe(0o700);
    const before = (await stat(written)).mtimeMs;
    await new Promise((resolve) => setTimeout(resolve, 20));
    await writeEditorTsconfig(vmfile, source);
    expect((await stat(written)).mtimeMs).toBe(before);
    // An upgrade (or a move) of vmfile changes the paths: the file follows.
    await writeFile(written, 'stale');
    await writeEditorTsconfig(vmfile, { ...source, declarations: '/usr/lib/node_modules/vmfile/dist/index.d.ts' });
    expect(await readFile(written, 'utf8')).toContain('/usr/lib/node_modules/vmfile/dist/index.d.ts');
  });

  test('a .vmfile that is a symbolic link is refused (exit 78), and nothing is written where it points', async () => {
    const dir = await tempDir();
    const elsewhere = await tempDir();
    await symlink(elsewhere, join(dir, '.vmfile'));
    const error = await writeEditorTsconfig(join(dir, 'Vmfile.ts'), source).catch((reason: unknown) => reason);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).exitCode).toBe(78);
    expect((error as ConfigError).message).toBe(`${join(dir, '.vmfile')} is a symbolic link; vmfile keeps this project's machines and keys there and makes it itself`);
    expect(await readdir(elsewhere)).toEqual([]);
  });

  test("the project's tsconfig.json only extends vmfile's", () => {
    const text = projectTsconfig();
    expect(text).toContain(`"extends": "${PROJECT_TSCONFIG_EXTENDS}"`);
    // JSON with comments, as tsc reads it: without the comments, plain JSON.
    expect(JSON.parse(text.replace(/^\/\/.*$/gm, ''))).toEqual({ extends: PROJECT_TSCONFIG_EXTENDS });
  });
});

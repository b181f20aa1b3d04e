import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { describe, expect, test } from 'vitest';
import { parseRsyncNames } from '../../../src/folders/without-rsync.js';
import { tempDir } from '../temp-dir.js';

describe('parseRsyncNames', () => {
  test("undoes rsync's \\#ooo escapes and keeps other backslashes", () => {
    expect(parseRsyncNames('./\na\\#012b\nc\\d\nsub/\n')).toEqual(['./', 'a\nb', 'c\\d', 'sub/']);
  });

  test("reads back exactly the names host rsync lists, odd ones included", async () => {
    const dir = await tempDir();
    const source = join(dir, 'src');
    await mkdir(join(source, 'sub dir'), { recursive: true });
    const names = ['plain.txt', 'new\nline', 'tab\there', 'ünïcode', 'back\\#012slash', join('sub dir', 'x')];
    for (const name of names) await writeFile(join(source, name), name);
    await mkdir(join(dir, 'empty'));
    const listed = execFileSync('rsync', ['-a', '-8', '--dry-run', '--out-format=%n', `${source}/`, `${join(dir, 'empty')}/`]).toString();
    expect(parseRsyncNames(listed).sort()).toEqual(['sub dir/', ...names].sort());
  });
});

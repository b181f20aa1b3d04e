/** The filter arguments, run through the real rsync (local to local) and git. */
import { execFileSync } from 'node:child_process';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { describe, expect, test } from 'vitest';
import { anchored, rsyncFilterArgs } from '../../../src/folders/rsync-filter.js';
import type { PlannedFolder } from '../../../src/folders/plan.js';
import { tempDir } from '../temp-dir.js';

async function tree(root: string, files: Record<string, string>): Promise<void> {
  for (const [path, content] of Object.entries(files)) {
    await mkdir(join(root, path, '..'), { recursive: true });
    await writeFile(join(root, path), content);
  }
}

async function listing(root: string, dir = root): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await listing(root, path)));
    else out.push(relative(root, path));
  }
  return out.sort();
}

async function sync(folder: Partial<PlannedFolder> & { host: string }, target: string): Promise<string[]> {
  const planned: PlannedFolder = { guest: '/vmfile', readonly: false, type: 'rsync', tag: 'vmfile0', ...folder };
  const args = await rsyncFilterArgs(planned, join(await tempDir(), 'excludes'));
  execFileSync('rsync', ['-a', '--delete', ...args, `${folder.host}/`, `${target}/`]);
  return listing(target);
}

const PROJECT = {
  'Vmfile.ts': 'vm',
  'src/app.ts': 'app',
  '.gitignore': 'node_modules/\n*.log\n!keep.log\n/build\nweird*name\n',
  'node_modules/dep/index.js': 'dep',
  'debug.log': 'log',
  'keep.log': 'kept by negation',
  'build/out.js': 'out',
  'src/build/tracked-dir.ts': 'not top-level build',
  'docs/.gitignore': 'draft.md\n',
  'docs/draft.md': 'draft',
  'docs/final.md': 'final',
  'weird*name': 'ignored, with a wildcard in its name',
  'weird-other': 'kept',
  '.vmfile/machines/default/id_ed25519': 'PRIVATE',
  'sub/.vmfile/key': 'PRIVATE',
};

describe('rsync folder filters', () => {
  test("in a git work tree, exactly git's rules: nested .gitignore, negation, anchors, tracked files kept, .git and .vmfile left out", async () => {
    const project = await tempDir();
    await tree(project, PROJECT);
    const git = (...args: string[]) => execFileSync('git', ['-C', project, '-c', 'user.email=t@t', '-c', 'user.name=t', ...args], { stdio: 'pipe' });
    git('init', '-q');
    git('add', '.');
    // Tracked although a pattern matches it: git keeps it, and so does the sync.
    await writeFile(join(project, 'tracked.log'), 'tracked');
    git('add', '-f', 'tracked.log');
    git('commit', '-qm', 'init');

    expect(await sync({ host: project, gitignore: true }, await tempDir())).toEqual(
      ['.gitignore', 'Vmfile.ts', 'docs/.gitignore', 'docs/final.md', 'keep.log', 'src/app.ts', 'src/build/tracked-dir.ts', 'tracked.log', 'weird-other'].sort(),
    );
  });

  test('outside a work tree rsync reads the .gitignore files itself', async () => {
    const project = await tempDir();
    await tree(project, { '.gitignore': 'node_modules/\n*.log\n', 'a.ts': 'a', 'x.log': 'x', 'node_modules/d.js': 'd', 'sub/.gitignore': 'secret\n', 'sub/secret': 's', 'sub/ok': 'o' });
    expect(await sync({ host: project, gitignore: true }, await tempDir())).toEqual(['.gitignore', 'a.ts', 'sub/.gitignore', 'sub/ok']);
  });

  test('exclude patterns apply; gitignore off copies ignored files; excluded files in the target are kept, others deleted', async () => {
    const project = await tempDir();
    await tree(project, { '.gitignore': '*.log\n', 'a.log': 'a', 'data/big.bin': 'big', 'data/small.txt': 's' });
    const target = await tempDir();
    await tree(target, { 'data/big.bin': 'guest copy', 'stale.txt': 'gone after sync' });
    expect(await sync({ host: project, exclude: ['*.bin'] }, target)).toEqual(['.gitignore', 'a.log', 'data/big.bin', 'data/small.txt']);
  });

  test.each([
    ['plain/path', '/plain/path'],
    ['dir/', '/dir/'],
    ['a*b?[c]', '/a\\*b\\?\\[c]'],
    ['back\\slash', '/back\\\\slash'],
  ])('anchored(%j) = %j', (path, pattern) => {
    expect(anchored(path)).toBe(pattern);
  });
});

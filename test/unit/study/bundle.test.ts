/**
 * A study bundle written from a real project directory and unpacked again, and bundles
 * made by hand with tar that must be refused whole.
 */
import { execFile } from 'node:child_process';
import { chmod, mkdir, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, test } from 'vitest';
import { projectFiles, writeStudy } from '../../../src/study/write.js';
import { unpackStudy } from '../../../src/study/unpack.js';
import { parseVmfile } from '../../../src/vmfile/config.js';
import { tempDir } from '../temp-dir.js';

const exec = promisify(execFile);

async function makeStudyProject(): Promise<string> {
  const dir = await tempDir('vmfile-study-');
  await writeFile(join(dir, 'Vmfile.ts'), 'export default {};\n');
  await writeFile(join(dir, 'Vmfile.lock'), '{"lockVersion":1,"machines":{}}\n');
  await writeFile(join(dir, 'analyse.sh'), '#!/bin/sh\nsort data/input.csv > results/sorted.csv\n');
  await chmod(join(dir, 'analyse.sh'), 0o755);
  await mkdir(join(dir, 'data'));
  await writeFile(join(dir, 'data', 'input.csv'), 'b\na\n');
  await writeFile(join(dir, 'data', 'scratch.log'), 'ignored\n');
  await writeFile(join(dir, '.gitignore'), '*.log\n');
  await mkdir(join(dir, 'conf'));
  await writeFile(join(dir, 'conf', 'app.ini'), '[app]\n');
  await mkdir(join(dir, '.vmfile', 'machines', 'default'), { recursive: true });
  await writeFile(join(dir, '.vmfile', 'machines', 'default', 'id_ed25519'), 'PRIVATE KEY\n');
  await symlink('/etc/passwd', join(dir, 'passwd'));
  return dir;
}

function studyProject(dir: string, folders?: unknown[]) {
  return parseVmfile(
    {
      box: 'debian-12',
      ...(folders === undefined ? {} : { folders }),
      provision: [
        { name: 'analyse', script: 'analyse.sh', outputs: ['/srv/results/*.csv'] },
        { name: 'conf', file: { source: 'conf', destination: '/etc/app' } },
      ],
    },
    join(dir, 'Vmfile.ts'),
    dir,
  );
}

describe('a study bundle', () => {
  test('holds the Vmfile, the lock, what the steps read and what the project folder syncs; never .vmfile/, what git ignores, links or itself; the same project makes the same file', async () => {
    const dir = await makeStudyProject();
    const project = studyProject(dir);
    const output = join(dir, 'study.vmbundle');
    await writeFile(output, 'an older bundle\n');
    const work = await tempDir();
    const files = await projectFiles(project, [output], work);
    expect(files).toEqual({ files: ['.gitignore', 'Vmfile.lock', 'Vmfile.ts', 'analyse.sh', 'conf/app.ini', 'data/input.csv'], leftOut: [], skipped: ['passwd'] });
    const home = await tempDir();
    const manifest = await writeStudy({ home, project, files, debs: [], output, staging: join(work, 'one') });
    expect(manifest).toEqual({ format: 'vmfile-study', version: 1, vmfile: 'Vmfile.ts', files: files.files, machines: ['default'], packages: 0 });
    const first = await readFile(output);
    await writeStudy({ home, project, files, debs: [], output, staging: join(work, 'two') });
    expect((await readFile(output)).equals(first)).toBe(true);

    const unpacked = await unpackStudy(output, join(work, 'unpacked'));
    expect(unpacked.manifest).toEqual(manifest);
    expect(await readFile(join(unpacked.project, 'data', 'input.csv'), 'utf8')).toBe('b\na\n');
    expect((await stat(join(unpacked.project, 'analyse.sh'))).mode & 0o111).not.toBe(0);
    expect((await stat(join(unpacked.project, 'data', 'input.csv'))).mode & 0o111).toBe(0);
    expect(await readdir(unpacked.project)).not.toContain('.vmfile');
  });

  test('with folders: [] it holds only what the Vmfile and its steps read; a folder outside the project is named, not carried', async () => {
    const dir = await makeStudyProject();
    const work = await tempDir();
    expect((await projectFiles(studyProject(dir, []), [], work)).files).toEqual(['Vmfile.lock', 'Vmfile.ts', 'analyse.sh', 'conf/app.ini']);
    const elsewhere = await tempDir();
    const outside = await projectFiles(studyProject(dir, [{ host: elsewhere, guest: '/data' }]), [], work);
    expect(outside.leftOut).toEqual([elsewhere]);
  });

  test('a step reading a file outside the project, or a missing lock, stops the bundle with the reason', async () => {
    const dir = await makeStudyProject();
    const work = await tempDir();
    const project = parseVmfile({ box: 'debian-12', provision: [{ name: 'far', script: '../far.sh' }] }, join(dir, 'Vmfile.ts'), dir);
    await expect(projectFiles(project, [], work)).rejects.toThrow(/outside .*:\n {2}- step "far" runs .*far\.sh/);
    await exec('rm', [join(dir, 'Vmfile.lock')]);
    await expect(projectFiles(studyProject(dir, []), [], work)).rejects.toThrow('Vmfile.lock does not exist: a study is replayed from what its lock records');
  });

  describe('made by hand, refused whole before anything is used', () => {
    async function handMade(build: (dir: string) => Promise<string[]>): Promise<{ file: string; into: string }> {
      const dir = await tempDir();
      await writeFile(join(dir, 'study.json'), JSON.stringify({ format: 'vmfile-study', version: 1, vmfile: 'Vmfile.ts', files: ['Vmfile.ts', 'Vmfile.lock'], machines: ['default'], packages: 0 }));
      await exec('tar', ['-cf', join(dir, 'packages.tar'), '-T', '/dev/null']);
      await mkdir(join(dir, 'project'));
      await writeFile(join(dir, 'project', 'Vmfile.ts'), 'export default {};\n');
      await writeFile(join(dir, 'project', 'Vmfile.lock'), '{}\n');
      const extra = await build(dir);
      const file = join(dir, 'study.vmbundle');
      // The directory itself, with what is in it, or the files one by one.
      const members = extra.includes('project') ? extra : ['project/Vmfile.ts', 'project/Vmfile.lock', ...extra];
      await exec('tar', ['-cf', file, '-C', dir, 'study.json', 'packages.tar', ...members]);
      return { file, into: join(dir, 'into') };
    }

    test('a plain one, with directory members, is taken', async () => {
      const { file, into } = await handMade(async () => ['project']);
      expect((await unpackStudy(file, into)).manifest.files).toEqual(['Vmfile.ts', 'Vmfile.lock']);
    });

    test.each([
      ['a link', async (dir: string) => (await symlink('/etc/shadow', join(dir, 'project', 'shadow')), ['project/shadow']), '"project/shadow" is a symbolic link, not a regular file'],
      ['a private state directory', async (dir: string) => (await mkdir(join(dir, 'project', '.vmfile')), await writeFile(join(dir, 'project', '.vmfile', 'key'), 'k'), ['project/.vmfile/key']), 'is inside a .vmfile directory'],
      ['a file study.json does not name', async (dir: string) => (await writeFile(join(dir, 'project', 'extra.sh'), 'x'), ['project/extra.sh']), '"extra.sh" is in the bundle but not in study.json'],
      ['a member outside project/', async (dir: string) => (await writeFile(join(dir, 'run.sh'), 'x'), ['run.sh']), '"run.sh" is neither study.json, packages.tar nor under project/'],
      ['a setuid file', async (dir: string) => (await writeFile(join(dir, 'project', 'su'), 'x'), await chmod(join(dir, 'project', 'su'), 0o4755), ['project/su']), '"project/su" has a setuid, setgid or sticky bit'],
    ])('%s', async (_label, build, problem) => {
      const { file, into } = await handMade(build);
      const error = await unpackStudy(file, into).catch((caught: unknown) => caught as Error);
      expect(error).toBeInstanceOf(Error);
      expect((error as Error).message).toContain('is not a study bundle vmfile accepts');
      expect((error as Error).message).toContain(problem);
    });

    test('a ".." member, and no study.json: nothing is unpacked', async () => {
      const dir = await tempDir();
      await writeFile(join(dir, 'evil'), 'x');
      const file = join(dir, 'bad.vmbundle');
      await exec('tar', ['-cf', file, '-C', dir, '--transform', 's,^evil,project/../evil,', 'evil']);
      const error = (await unpackStudy(file, join(dir, 'into')).catch((caught: unknown) => caught)) as Error;
      expect(error.message).toContain('"project/../evil" is not a plain relative path');
      expect(error.message).toContain('it has no study.json');
      expect(error.message).toContain('Nothing was unpacked.');
      await expect(stat(join(dir, 'into'))).rejects.toThrow('ENOENT');
    });

    test('not a tar at all', async () => {
      const dir = await tempDir();
      await writeFile(join(dir, 'x.vmbundle'), 'hello');
      await expect(unpackStudy(join(dir, 'x.vmbundle'), join(dir, 'into'))).rejects.toThrow(/tar cannot read it/);
    });
  });
});

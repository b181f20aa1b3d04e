import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { ConfigError } from '../../../src/errors.js';
import { findVmfile, loadProject } from '../../../src/project/load.js';
import { tempDir } from '../temp-dir.js';

const GOOD_VMFILE = `import { defineVm } from 'vmfile';

export default defineVm({ box: 'debian-12', cpus: 3, memory: '2GiB' });
`;

async function rejection(promise: Promise<unknown>): Promise<ConfigError> {
  const error: unknown = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  if (!(error instanceof ConfigError)) throw new Error(`expected a ConfigError, got ${String(error)}`);
  return error;
}

describe('loadProject', () => {
  test("loads a Vmfile.ts that imports from 'vmfile' in a directory without node_modules", async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'Vmfile.ts'), GOOD_VMFILE);

    const project = await loadProject({ cwd: dir });

    expect(project.dir).toBe(dir);
    expect(project.vmfilePath).toBe(join(dir, 'Vmfile.ts'));
    expect(project.machines.map((m) => [m.box.name, m.cpus, m.memory])).toEqual([['debian-12', 3, 2 * 1024 ** 3]]);
  });

  test('finds the Vmfile from a subdirectory and resolves the project to its directory', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'Vmfile.ts'), GOOD_VMFILE);
    const deep = join(dir, 'src', 'lib');
    await mkdir(deep, { recursive: true });

    const project = await loadProject({ cwd: deep });

    expect(project.dir).toBe(dir);
    expect(project.vmfilePath).toBe(join(dir, 'Vmfile.ts'));
  });

  test('loads the file named by --vmfile, relative to cwd, whatever its name', async () => {
    const dir = await tempDir();
    await mkdir(join(dir, 'envs'));
    await writeFile(join(dir, 'envs', 'staging.ts'), `export default { box: 'alpine', cpus: 1 };\n`);
    // A Vmfile.ts in cwd must not win over the explicit path.
    await writeFile(join(dir, 'Vmfile.ts'), GOOD_VMFILE);

    const project = await loadProject({ cwd: dir, vmfile: 'envs/staging.ts' });

    expect(project.vmfilePath).toBe(join(dir, 'envs', 'staging.ts'));
    expect(project.dir).toBe(join(dir, 'envs'));
    expect(project.machines[0]?.box).toEqual({ name: 'alpine' });
    expect(project.machines[0]?.hostname).toBe('envs');
  });

  test('a syntax error is a ConfigError (exit 78) naming the file', async () => {
    const dir = await tempDir();
    const path = join(dir, 'Vmfile.ts');
    await writeFile(path, `export default defineVm({ box: 'debian-12', cpus: ;\n`);

    const error = await rejection(loadProject({ cwd: dir }));

    expect(error.exitCode).toBe(78);
    expect(error.message.startsWith(`${path} could not be loaded: `)).toBe(true);
    expect(error.hint).toBe('fix the TypeScript error above; the Vmfile must `export default defineVm({...})`');
  });

  test('a Vmfile that throws while loading is a ConfigError with the thrown message', async () => {
    const dir = await tempDir();
    const path = join(dir, 'Vmfile.ts');
    await writeFile(path, `throw new Error('no network here');\n`);

    const error = await rejection(loadProject({ cwd: dir }));

    expect(error.message).toBe(`${path} could not be loaded: no network here`);
  });

  test('a Vmfile without a default export is a ConfigError saying so', async () => {
    const dir = await tempDir();
    const path = join(dir, 'Vmfile.ts');
    await writeFile(path, `export const vm = { box: 'debian-12' };\n`);

    const error = await rejection(loadProject({ cwd: dir }));

    expect(error.exitCode).toBe(78);
    expect(error.message).toBe(`${path} has no default export`);
    expect(error.hint).toBe('end it with: export default defineVm({ box: "debian-12", ... })');
  });

  test('an invalid Vmfile is reported by its file name', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'Vmfile.ts'), `import { defineVm } from 'vmfile';\nexport default defineVm({ box: 'd', cpus: 0 });\n`);

    const error = await rejection(loadProject({ cwd: dir }));

    expect(error.message).toBe('Vmfile.ts is invalid:\n  - cpus: a machine needs at least 1 CPU');
  });

  test('a Vmfile that loops for ever is stopped at the load limit', async () => {
    const dir = await tempDir();
    const path = join(dir, 'Vmfile.ts');
    await writeFile(path, `for (;;) {}\nexport default { box: 'debian-12' };\n`);
    const start = performance.now();

    const error = await rejection(loadProject({ cwd: dir, timeoutMs: 500 }));

    expect(performance.now() - start).toBeLessThan(3000);
    expect(error.exitCode).toBe(78);
    expect(error.message).toBe(`${path} did not finish loading within 0.5 s`);
    expect(error.hint).toBe('a Vmfile must not wait for anything: no network, no endless loops');
  });

  test('lists the files the Vmfile loaded: itself first, then its local modules, not packages', async () => {
    const dir = await tempDir();
    await mkdir(join(dir, 'vm'));
    await mkdir(join(dir, 'node_modules', 'sizes'), { recursive: true });
    await writeFile(
      join(dir, 'Vmfile.ts'),
      `import { defineVm } from 'vmfile';\nimport { cpus } from './vm/cpus';\nimport memory from 'sizes';\nimport extra from './vm/extra.json';\nexport default defineVm({ box: 'debian-12', cpus: cpus + extra.cpus, memory });\n`,
    );
    await writeFile(join(dir, 'vm', 'cpus.ts'), `import { base } from './base.js';\nexport const cpus: number = base + 1;\n`);
    await writeFile(join(dir, 'vm', 'base.js'), `export const base = 1;\n`);
    await writeFile(join(dir, 'vm', 'extra.json'), `{ "cpus": 1 }\n`);
    await writeFile(join(dir, 'node_modules', 'sizes', 'package.json'), `{ "name": "sizes", "main": "index.js" }\n`);
    await writeFile(join(dir, 'node_modules', 'sizes', 'index.js'), `module.exports = '1GiB';\n`);

    const project = await loadProject({ cwd: dir });

    expect(project.machines[0]?.cpus).toBe(3);
    expect(project.loadedFiles[0]).toBe(join(dir, 'Vmfile.ts'));
    expect([...project.loadedFiles].sort()).toEqual([join(dir, 'Vmfile.ts'), join(dir, 'vm', 'base.js'), join(dir, 'vm', 'cpus.ts'), join(dir, 'vm', 'extra.json')]);
  });

  test('a changed Vmfile is read again, not served from a module cache', async () => {
    const dir = await tempDir();
    const path = join(dir, 'Vmfile.ts');
    await writeFile(path, `export default { box: 'one' };\n`);
    expect((await loadProject({ cwd: dir })).machines[0]?.box.name).toBe('one');

    await writeFile(path, `export default { box: 'two' };\n`);
    expect((await loadProject({ cwd: dir })).machines[0]?.box.name).toBe('two');
  });
});

describe('findVmfile', () => {
  test('prefers Vmfile.ts over the other names in the same directory', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'Vmfile.mjs'), '');
    await writeFile(join(dir, 'Vmfile.ts'), '');

    expect(await findVmfile({ cwd: dir })).toBe(join(dir, 'Vmfile.ts'));
  });

  test('the nearest directory wins over a parent', async () => {
    const dir = await tempDir();
    await mkdir(join(dir, 'child'));
    await writeFile(join(dir, 'Vmfile.ts'), '');
    await writeFile(join(dir, 'child', 'Vmfile.js'), '');

    expect(await findVmfile({ cwd: join(dir, 'child') })).toBe(join(dir, 'child', 'Vmfile.js'));
  });

  test('no Vmfile anywhere up the tree is a ConfigError with a hint', async () => {
    const dir = await tempDir();

    const error = await rejection(findVmfile({ cwd: dir }));

    expect(error.exitCode).toBe(78);
    expect(error.message).toBe(`no Vmfile.ts in ${dir} or any parent directory`);
    expect(error.hint).toBe('create one (see Vmfile.example.ts in the vmfile package) or pass --vmfile PATH');
  });

  test('a missing --vmfile path is a ConfigError naming the resolved path', async () => {
    const dir = await tempDir();

    const error = await rejection(findVmfile({ cwd: dir, vmfile: 'nope/Vmfile.ts' }));

    expect(error.message).toBe(`Vmfile not found: ${join(dir, 'nope', 'Vmfile.ts')}`);
    expect(error.hint).toBe('check the --vmfile path');
  });
});

describe('the files a load ran', () => {
  test('are the Vmfile and the modules it imported, as real paths; a second load reads them again', async () => {
    const dir = await tempDir();
    await mkdir(join(dir, 'lib'));
    await writeFile(join(dir, 'lib', 'size.ts'), "export const cpus = 2;\n");
    await writeFile(join(dir, 'lib', 'data.json'), '{"memory": "1GiB"}\n');
    await writeFile(join(dir, 'Vmfile.ts'), "import { cpus } from './lib/size';\nimport data from './lib/data.json';\nexport default { box: 'debian-12', cpus, memory: data.memory };\n");

    const first = await loadProject({ cwd: dir });
    await writeFile(join(dir, 'lib', 'size.ts'), "export const cpus = 3;\n");
    const second = await loadProject({ cwd: dir });

    expect(first.loadedFiles?.slice().sort()).toEqual([join(dir, 'Vmfile.ts'), join(dir, 'lib', 'data.json'), join(dir, 'lib', 'size.ts')].sort());
    expect(first.machines[0]?.cpus).toBe(2);
    expect(second.machines[0]?.cpus).toBe(3);
  });
});

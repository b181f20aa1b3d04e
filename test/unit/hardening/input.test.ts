/**
 * Hostile or careless input that once ended as vmfile's own failure (exit 70), as
 * silence, or as a dangerous setting taken without a word. Each now gets a
 * configuration error (exit 78) naming the file or field.
 */
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { ConfigError, UserError } from '../../../src/errors.js';
import { loadProject } from '../../../src/project/load.js';
import { readLockFile } from '../../../src/store/lockfile.js';
import { planFolders } from '../../../src/folders/plan.js';
import { checkProjectExposure } from '../../../src/folders/sync.js';
import { validate } from '../../../src/services/validate.js';
import { parseVmfile } from '../../../src/vmfile/config.js';
import { tempDir } from '../temp-dir.js';

async function failure(promise: Promise<unknown>): Promise<Error> {
  const outcome: unknown = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  if (!(outcome instanceof Error)) throw new Error('expected a failure');
  return outcome;
}

async function projectWith(vmfile: string): Promise<string> {
  const dir = await tempDir();
  await writeFile(join(dir, 'Vmfile.ts'), vmfile);
  return dir;
}

describe('loading a Vmfile that misbehaves', () => {
  test.each([
    ['a rejected promise as default export', `export default Promise.reject(new Error('no config today'));`, /could not be loaded: no config today/],
    ['a getter that throws', `export default { box: 'debian-12', get cpus() { throw new Error('getter says no'); } };`, /is not plain data \(getter says no\)/],
    ['a function inside', `export default { box: 'debian-12', cpus: () => 2 };`, /is not plain data/],
    ['a call to process.exit', `process.exit(0);\nexport default { box: 'debian-12' };`, /called process\.exit\(0\) while loading/],
    ['a throw at top level', `throw new Error('broken on purpose');`, /could not be loaded: broken on purpose/],
  ])('%s is a ConfigError naming the file', async (_what, source, message) => {
    const dir = await projectWith(source);
    const error = await failure(loadProject({ cwd: dir }));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toContain(join(dir, 'Vmfile.ts'));
    expect(error.message).toMatch(message);
  });

  test('a default export that is a promise of a Vmfile is its value', async () => {
    const dir = await projectWith(`export default Promise.resolve({ box: 'debian-12', cpus: 2 });`);
    expect((await loadProject({ cwd: dir })).machines[0]?.cpus).toBe(2);
  });

  test('a Vmfile that never finishes loading is stopped at the time limit', async () => {
    const dir = await projectWith(`await new Promise(() => {});\nexport default { box: 'debian-12' };`);
    const error = await failure(loadProject({ cwd: dir, timeoutMs: 300 }));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toMatch(/did not finish loading within 0\.3 s/);
  });

  test('process.exit is vmfile\'s own again after loading', async () => {
    const exit = process.exit;
    const dir = await projectWith(`process.exit(3);`);
    await failure(loadProject({ cwd: dir }));
    expect(process.exit).toBe(exit);
  });

  test('a Vmfile.ts that is a directory says so, not a vmfile file name', async () => {
    const dir = await tempDir();
    await mkdir(join(dir, 'Vmfile.ts'));
    const error = await failure(loadProject({ cwd: dir }));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toBe(`${join(dir, 'Vmfile.ts')} is not a file (it is a directory)`);
  });
});

describe('state files that are not what they should be', () => {
  test('a Vmfile.lock that is a directory is a ConfigError naming it', async () => {
    const dir = await tempDir();
    await mkdir(join(dir, 'Vmfile.lock'));
    const error = await failure(readLockFile(dir));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toContain(`${join(dir, 'Vmfile.lock')} cannot be read`);
  });
});

describe('dangerous settings need explicit words', () => {
  const problems = (value: unknown): string[] => {
    try {
      parseVmfile(value, '/p/Vmfile.ts', '/p');
    } catch (error) {
      if (error instanceof ConfigError) return error.message.split('\n').slice(1).map((line) => line.replace(/^ {2}- /, ''));
      throw error;
    }
    return [];
  };

  test.each(['/', '/etc', '/usr/', '/var//lib', '/home', '/home/vm', '/root', '/tmp'])('a folder at %s in the guest is refused', (guest) => {
    expect(problems({ box: 'd', folders: [{ host: '.', guest }] })).toEqual([expect.stringMatching(/^folders\[0\]\.guest: .* (a system directory of the guest|a home directory)/)]);
  });

  test.each(['/vmfile', '/srv/app', '/home/vm/project', '/opt/tools'])('a folder at %s is fine', (guest) => {
    expect(problems({ box: 'd', folders: [{ host: '.', guest }] })).toEqual([]);
  });

  test('a port on a non-loopback address needs public: true', () => {
    expect(problems({ box: 'd', ports: [{ guest: 80, host: 8080, hostIp: '0.0.0.0' }] })).toEqual([
      'ports[0].hostIp: "0.0.0.0" makes the port reachable from other hosts; add public: true to say you mean it, or leave hostIp out (127.0.0.1)',
    ]);
    expect(problems({ box: 'd', ports: [{ guest: 80, host: 8080, hostIp: '0.0.0.0', public: true }] })).toEqual([]);
    expect(problems({ box: 'd', ports: [{ guest: 80, host: 8080, hostIp: '127.0.0.2' }] })).toEqual([]);
  });

  test('the same host port on 127.0.0.1 and on 0.0.0.0 is a conflict, across machines and within one', () => {
    expect(
      problems({
        defaults: { box: 'd' },
        machines: { web: { ports: [{ guest: 80, host: 8080 }] }, db: { ports: [{ guest: 81, host: 8080, hostIp: '0.0.0.0', public: true }] } },
      }),
    ).toEqual(['machines.db.ports: host port 8080/tcp is also forwarded by machine web (127.0.0.1 and 0.0.0.0 overlap: 0.0.0.0 is every address)']);
    expect(problems({ box: 'd', ports: [{ guest: 80, host: 8080 }, { guest: 81, host: 8080 }] })).toEqual(['ports: host port 8080/tcp is forwarded twice']);
    expect(problems({ box: 'd', ports: [{ guest: 80, host: 8080 }, { guest: 81, host: 8080, protocol: 'udp' }] })).toEqual([]);
  });

  test('a problem in one machine hides no private-network problem in another', () => {
    const found = problems({ defaults: { box: 'd' }, machines: { web: { cpus: 0 }, db: { network: { ip: '10.10.0.255' } } } });
    expect(found).toEqual(expect.arrayContaining([expect.stringMatching(/^machines\.web\.cpus/), expect.stringMatching(/network\.ip: machine db: 10\.10\.0\.255 is the broadcast address/)]));
  });
});

describe('validate checks what vmup checks, all at once', () => {
  test('missing script, file and folder paths are reported together, before anything boots', async () => {
    const dir = await tempDir();
    const project = parseVmfile(
      { box: 'debian-12', cpus: 1, memory: '256MiB', provision: [{ name: 'setup', script: 'missing.sh' }], folders: [{ host: 'nowhere', guest: '/data', type: 'rsync' }] },
      join(dir, 'Vmfile.ts'),
      dir,
    );
    const error = await failure(validate({ project }, { env: process.env }));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toMatch(/^2 problems; nothing was created or booted:/);
    expect(error.message).toContain('provisioning step "setup": script');
    expect(error.message).toContain(`folders[0].host ${join(dir, 'nowhere')} does not exist`);
  });

  test('a host port already taken is reported by validate too', async () => {
    const net = await import('node:net');
    const server = net.createServer().listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const port = (server.address() as { port: number }).port;
    try {
      const dir = await tempDir();
      const project = parseVmfile({ box: 'debian-12', cpus: 1, memory: '256MiB', folders: [], ports: [{ guest: 80, host: port }] }, join(dir, 'Vmfile.ts'), dir);
      const error = await failure(validate({ project }, { env: process.env }));
      expect(error).toBeInstanceOf(UserError);
      expect(error.message).toContain(`${port}`);
    } finally {
      server.close();
    }
  });
});

describe('live folders and the project\'s secrets', () => {
  const project = { dir: '/p', vmfilePath: '/p/Vmfile.ts' };
  const check = (folders: { host: string; guest: string; type?: 'virtiofs' | '9p' | 'rsync'; readonly?: boolean; shareProjectState?: boolean }[]) => {
    const specs = folders.map((folder) => ({ readonly: false, exclude: [], ...folder }));
    return checkProjectExposure('web', specs, planFolders(specs, { virtiofsd: true }), project);
  };

  test.each([
    ['the project directory', '/p'],
    ['a parent of it', '/'],
  ])('a writable live folder of %s is refused, naming what it exposes', async (_what, host) => {
    await expect(check([{ host, guest: '/src' }])).rejects.toThrow(ConfigError);
    await expect(check([{ host, guest: '/src' }])).rejects.toThrow('machine "web": folders[0] (virtiofs, writable) would let the guest change /p/.vmfile and /p/Vmfile.ts');
  });

  test('read-only, rsync, a subdirectory, or shareProjectState: true are fine', async () => {
    await expect(check([{ host: '/p', guest: '/src', readonly: true }])).resolves.toBeUndefined();
    await expect(check([{ host: '/p', guest: '/src', type: 'rsync' }])).resolves.toBeUndefined();
    await expect(check([{ host: '/p/src', guest: '/src' }])).resolves.toBeUndefined();
    await expect(check([{ host: '/p', guest: '/src', shareProjectState: true }])).resolves.toBeUndefined();
    await expect(check([{ host: '/p2', guest: '/src' }])).resolves.toBeUndefined();
  });
});

describe('live folders and the files the host runs', () => {
  /** A project whose Vmfile imports src/vm.ts, with the given folders and steps; loaded as vmup loads it. */
  async function projectWithImport(rest: string): Promise<{ dir: string; project: Awaited<ReturnType<typeof loadProject>> }> {
    const dir = await tempDir();
    await mkdir(join(dir, 'src', 'deep'), { recursive: true });
    await mkdir(join(dir, 'ansible'));
    await writeFile(join(dir, 'src', 'vm.ts'), "export { cpus } from './deep/cpus';\n");
    await writeFile(join(dir, 'src', 'deep', 'cpus.ts'), 'export const cpus = 2;\n');
    await writeFile(join(dir, 'ansible', 'site.yml'), '- hosts: all\n');
    await mkdir(join(dir, 'scripts'));
    await writeFile(join(dir, 'scripts', 'setup.sh'), 'true\n');
    await writeFile(join(dir, 'Vmfile.ts'), `import { cpus } from './src/vm';\nexport default { box: 'debian-12', cpus, ${rest} };\n`);
    return { dir, project: await loadProject({ cwd: dir }) };
  }

  function exposure(project: Awaited<ReturnType<typeof loadProject>>): Promise<unknown> {
    const machine = project.machines[0];
    if (machine === undefined) throw new Error('a machine expected');
    return Promise.resolve()
      .then(() => checkProjectExposure(machine.name, machine.folders, planFolders(machine.folders, { virtiofsd: true }), project))
      .then(() => undefined, (error: unknown) => error);
  }

  test('a writable live folder holding a module the Vmfile imports is refused, naming it', async () => {
    const { dir, project } = await projectWithImport("folders: [{ host: './src/deep', guest: '/src' }]");
    const error = await exposure(project);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toContain(join(dir, 'src', 'deep', 'cpus.ts'));
  });

  test('a folder reached through a symlink is no way round', async () => {
    const { dir, project } = await projectWithImport("folders: [{ host: './alias', guest: '/src' }]");
    await symlink(join(dir, 'src'), join(dir, 'alias'));
    expect(((await exposure(project)) as Error).message).toContain(join(dir, 'src', 'vm.ts'));
  });

  test('a writable live folder holding an Ansible playbook is refused, naming it', async () => {
    const { dir, project } = await projectWithImport("folders: [{ host: './ansible', guest: '/a' }], provision: [{ ansible: { playbook: 'ansible/site.yml' } }]");
    const error = await exposure(project);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toContain(join(dir, 'ansible', 'site.yml'));
  });

  test('a writable live folder holding a step script is refused, naming it', async () => {
    const { dir, project } = await projectWithImport("folders: [{ host: './scripts', guest: '/s' }], provision: [{ script: 'scripts/setup.sh' }]");
    const error = await exposure(project);
    expect((error as Error).message).toContain(join(dir, 'scripts', 'setup.sh'));
  });

  test('read-only, rsync, shareProjectState, or a folder holding none of them are fine', async () => {
    for (const folder of ["{ host: './src', guest: '/s', readonly: true }", "{ host: './src', guest: '/s', type: 'rsync' }", "{ host: './src', guest: '/s', shareProjectState: true }", "{ host: './ansible', guest: '/a' }", "{ host: './scripts', guest: '/s' }"]) {
      const { project } = await projectWithImport(`folders: [${folder}]`);
      expect(await exposure(project)).toBeUndefined();
    }
  });
});


import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { globalStatus } from '../../../src/services/global-status.js';
import { lockFilePath, machinePaths, projectIndexFile, projectsIndexDir } from '../../../src/store/layout.js';
import { writeMachineState } from '../../../src/store/machine.js';
import { listProjects, recordLockedBoxes, recordProject, registerMachineUse } from '../../../src/store/projects.js';
import { tempDir } from '../temp-dir.js';
import { qemuFiles } from '../../../src/driver/qemu/files.js';

/** A project directory with one halted machine on disk. */
async function projectWithMachine(name: string): Promise<string> {
  const dir = await tempDir('vmfile-project-');
  const paths = machinePaths(dir, name);
  await mkdir(paths.dir, { recursive: true });
  await writeFile(qemuFiles(paths.dir).overlay, '');
  await writeMachineState(paths.state, { name, instanceId: 'vmfile-1', createdAt: '2026-11-28T00:00:00.000Z', box: { name: 'debian-12', version: '1', sha256: 'ab'.repeat(32) }, user: 'vm' });
  return dir;
}

describe('the project index', () => {
  test('lists recorded projects; prunes empty, damaged and misnamed entries, and keeps one it cannot read (moved, unmounted), saying so', async () => {
    const home = await tempDir();
    const kept = await projectWithMachine('web');
    const gone = join(await tempDir(), 'moved-project');
    const empty = await tempDir('vmfile-project-');
    for (const project of [kept, gone, empty]) await recordProject(home, { project, vmfile: join(project, 'Vmfile.ts') });
    await recordProject(home, { project: kept, vmfile: join(kept, 'Vmfile.ts') });
    await writeFile(join(projectsIndexDir(home), 'damaged.json'), '{"project": 1');
    // A valid entry under another project's name: not what the index wrote.
    await writeFile(join(projectsIndexDir(home), 'other.json'), JSON.stringify({ project: kept, vmfile: join(kept, 'Vmfile.ts') }));

    const { projects, pruned } = await listProjects(home);

    expect(projects).toEqual([
      { project: kept, vmfile: join(kept, 'Vmfile.ts'), machines: {}, readable: true },
      { project: gone, vmfile: join(gone, 'Vmfile.ts'), machines: {}, readable: false },
    ].sort((a, b) => a.project.localeCompare(b.project)));
    expect(pruned).toBe(3);
    const entries = async () => (await readdir(projectsIndexDir(home))).filter((name) => name.endsWith('.json')).sort();
    expect(await entries()).toEqual([projectIndexFile(home, kept), projectIndexFile(home, gone)].map((path) => path.split('/').at(-1)).sort());
    // Forgotten only when asked (global-status --prune), and only if its directory is not there at all.
    expect((await listProjects(home, { forgetMissing: true })).pruned).toBe(1);
    expect(await entries()).toEqual([projectIndexFile(home, kept).split('/').at(-1)]);
  });

  test('a project with a Vmfile.lock and no machines stays (box prune keeps what its lock pins)', async () => {
    const home = await tempDir();
    const locked = await tempDir('vmfile-project-');
    await writeFile(lockFilePath(locked), '{"lockVersion":1,"machines":{}}\n');
    await recordProject(home, { project: locked, vmfile: join(locked, 'Vmfile.ts') });

    expect(await listProjects(home)).toEqual({ projects: [{ project: locked, vmfile: join(locked, 'Vmfile.ts'), machines: {}, readable: true }], pruned: 0 });
  });

  test('global-status reads each machine from its project, without loading any Vmfile', async () => {
    const home = await tempDir();
    const project = await projectWithMachine('db');
    // A Vmfile that would fail if it were run.
    await writeFile(join(project, 'Vmfile.ts'), 'throw new Error("must not be loaded")');
    await recordProject(home, { project, vmfile: join(project, 'Vmfile.ts') });

    expect(await globalStatus({ home })).toEqual({ machines: [{ project, vmfile: join(project, 'Vmfile.ts'), machine: 'db', status: 'halted', ports: [] }], unreadable: [], pruned: 0 });
  });

  test('an empty home has no projects', async () => {
    expect(await listProjects(await tempDir())).toEqual({ projects: [], pruned: 0 });
  });

  test("a Vmfile.lock's boxes are kept once each, however many machines stand on them", async () => {
    const home = await tempDir();
    const project = await projectWithMachine('web');
    const box = { name: 'debian-12', version: '2026.12.7' };
    await recordLockedBoxes(home, { project, vmfile: join(project, 'Vmfile.ts') }, [box, box, { name: 'other', version: '1' }, box]);
    const { projects } = await listProjects(home);
    expect(projects[0]?.locked).toEqual([box, { name: 'other', version: '1' }]);
  });

  test('an entry any writer starts keeps what its machines stand on, so prune is never unsure of it', async () => {
    const home = await tempDir();
    const project = await tempDir('vmfile-project-');
    await writeFile(lockFilePath(project), '{}');
    await recordLockedBoxes(home, { project, vmfile: join(project, 'Vmfile.ts') }, [{ name: 'debian-12', version: '1' }]);
    expect((await listProjects(home)).projects[0]?.machines).toEqual({});
  });

  test('a machine registered before its directory is made keeps its project listed', async () => {
    const home = await tempDir();
    const project = await tempDir('vmfile-project-');
    const entry = { project, vmfile: join(project, 'Vmfile.ts') };
    await recordProject(home, entry);
    await registerMachineUse(home, entry, 'web', { box: { name: 'debian-12', version: '1' }, states: [] });
    const { projects, pruned } = await listProjects(home);
    expect(pruned).toBe(0);
    expect(projects.map((listed) => listed.machines)).toEqual([{ web: { box: { name: 'debian-12', version: '1' }, states: [] } }]);
  });
});

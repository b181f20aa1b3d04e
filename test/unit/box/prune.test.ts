import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { boxesInUse, planPrune, type BoxUse } from '../../../src/box/prune.js';
import { lockFilePath, machinePaths } from '../../../src/store/layout.js';
import { writeMachineState } from '../../../src/store/machine.js';
import { recordProject } from '../../../src/store/projects.js';
import { tempDir } from '../temp-dir.js';

const box = (name: string, version: string) => ({ name, version });

describe('planPrune', () => {
  const installed = [box('debian', '1'), box('debian', '2'), box('debian', '10'), box('org/name', '1.0'), box('org/name', '1.1'), box('alone', '3')];

  test('nothing used: only the newest of each box stays', () => {
    expect(planPrune(installed, [])).toEqual({
      remove: [box('debian', '1'), box('debian', '2'), box('org/name', '1.0')],
      keep: [
        { ...box('debian', '10'), reasons: ['newest'] },
        { ...box('org/name', '1.1'), reasons: ['newest'] },
        { ...box('alone', '3'), reasons: ['newest'] },
      ],
    });
  });

  test('every used version stays, with who uses it', () => {
    const uses: BoxUse[] = [
      { ...box('debian', '1'), by: '/p/Vmfile.lock (machine "web")' },
      { ...box('debian', '1'), by: 'machine "web" of /p' },
      { ...box('debian', '10'), by: 'machine "db" of /q' },
      { ...box('org/name', '1.0'), by: '/q/Vmfile.lock (machine "db")' },
      // A use of a box that is not installed changes nothing.
      { ...box('gone', '1'), by: 'machine "x" of /r' },
    ];
    const plan = planPrune(installed, uses);
    expect(plan.remove).toEqual([box('debian', '2')]);
    expect(plan.keep).toContainEqual({ ...box('debian', '1'), reasons: ['used by /p/Vmfile.lock (machine "web")', 'used by machine "web" of /p'] });
    expect(plan.keep).toContainEqual({ ...box('debian', '10'), reasons: ['newest', 'used by machine "db" of /q'] });
    expect(plan.keep).toContainEqual({ ...box('org/name', '1.0'), reasons: ['used by /q/Vmfile.lock (machine "db")'] });
  });

  test('versions compare by number: 10 is newer than 2', () => {
    expect(planPrune([box('d', '2'), box('d', '10')], []).keep).toEqual([{ ...box('d', '10'), reasons: ['newest'] }]);
  });
});

describe('boxesInUse', () => {
  test("reads the lock and the machines of every indexed project; a project with only a lock counts", async () => {
    const home = await tempDir();
    const withMachine = await tempDir();
    const paths = machinePaths(withMachine, 'web');
    await mkdir(paths.dir, { recursive: true });
    await writeMachineState(paths.state, { name: 'web', instanceId: 'i', createdAt: '2026-11-28T00:00:00.000Z', box: { name: 'debian', version: '2', sha256: 'ab'.repeat(32) }, user: 'vm' });
    const lockOnly = await tempDir();
    await writeFile(lockFilePath(lockOnly), JSON.stringify({ lockVersion: 1, machines: { db: { box: 'org/name', version: '1.0', sha256: 'cd'.repeat(32), source: 'import' } } }));
    for (const project of [withMachine, lockOnly]) await recordProject(home, { project, vmfile: join(project, 'Vmfile.ts') });

    const { uses, warnings } = await boxesInUse(home);

    expect(uses).toEqual(
      expect.arrayContaining([
        { name: 'debian', version: '2', by: `machine "web" of ${withMachine}` },
        { name: 'org/name', version: '1.0', by: `${lockFilePath(lockOnly)} (machine "db")` },
      ]),
    );
    expect(uses).toHaveLength(2);
    expect(warnings).toEqual([]);
  });

  test('a damaged lock or machine record is a warning that says what is not known', async () => {
    const home = await tempDir();
    const project = await tempDir();
    await writeFile(lockFilePath(project), '{ not json');
    await mkdir(machinePaths(project, 'web').dir, { recursive: true });
    await writeFile(machinePaths(project, 'web').state, '[]');
    await recordProject(home, { project, vmfile: join(project, 'Vmfile.ts') });

    const { uses, warnings } = await boxesInUse(home);

    expect(uses).toEqual([]);
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatch(/Vmfile\.lock is not valid JSON.*: the versions it pins are not known$/s);
    expect(warnings[1]).toMatch(/machine record .*machine\.json is damaged.*: the box it uses is not known$/);
  });
});

/**
 * Damaged and ambiguous state through the built CLI, without booting anything: a broken
 * machine is reported with its reason and never hides the others, vmup refuses it and
 * destroy clears it; commands that act on one machine never pick one silently.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, explain, makeProject } from './cli.js';

interface StatusJson {
  machine: string;
  status: string;
  errors?: string[];
}

describe('broken machines and machine selection', () => {
  let project: string;
  const run = (bin: Parameters<typeof cli>[0], ...args: string[]) => cli(bin, args, { cwd: project });
  const statuses = async () => {
    const result = await run('vmfile', 'status', '--json');
    expect(result.code, explain(result)).toBe(0);
    return JSON.parse(result.stdout) as StatusJson[];
  };

  beforeAll(async () => {
    project = await makeProject(`import { defineVm } from 'vmfile';
export default defineVm({ defaults: { box: 'debian-12', memory: '512MiB', folders: [] }, machines: { web: {}, db: {} } });
`);
    const db = join(project, '.vmfile', 'machines', 'db');
    await mkdir(db, { recursive: true });
    await writeFile(join(db, 'machine.json'), '{ "name": "db", "instanceId": ');
  });
  afterAll(async () => {
    await rm(project, { recursive: true, force: true });
  });

  it('status reports the broken machine with its reason, and the other one as it is', async () => {
    const entries = await statuses();
    expect(entries.map((entry) => [entry.machine, entry.status])).toEqual([
      ['web', 'not created'],
      ['db', 'broken'],
    ]);
    expect(entries[1]?.errors?.join('\n')).toMatch(/machine record .*machine\.json is damaged: not JSON/);
    const text = await run('vmfile', 'status');
    expect(text.stdout).toMatch(/db\s+broken\s+machine record/);
  });

  it('vmup refuses the broken machine with its reason and how to clear it, before creating anything', async () => {
    const result = await run('vmup');
    expect(result.code, explain(result)).toBe(1);
    expect(result.stderr).toContain('machine "db" is broken (machine record');
    expect(result.stderr).toContain('hint: vmfile destroy db clears it');
    expect((await statuses())[0]?.status).toBe('not created');
  });

  it('snapshot commands on a Vmfile with several machines need -m and never pick one silently', async () => {
    for (const args of [['snapshot', 'list'], ['snapshot', 'save', 'before']]) {
      const result = await run('vmfile', ...args);
      expect(result.code, explain(result)).toBe(1);
      expect(result.stderr).toContain('this Vmfile defines 2 machines; say which one: web, db');
    }
    const named = await run('vmfile', 'snapshot', 'list', '-m', 'web');
    expect(named.code, explain(named)).toBe(1);
    expect(named.stderr).toContain('machine "web" is not created');
  });

  it('destroy clears the broken machine', async () => {
    const result = await run('vmfile', 'destroy', '-f', 'db');
    expect(result.code, explain(result)).toBe(0);
    expect((await statuses()).map((entry) => entry.status)).toEqual(['not created', 'not created']);
  });
});

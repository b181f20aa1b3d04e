import { spawn, spawnSync } from 'node:child_process';
import { describe, expect, test } from 'vitest';
import { mountsUnder, processAlive, processesUnder, processStartTime } from '../../../src/store/process.js';
import { tempDir } from '../temp-dir.js';

describe('processAlive', () => {
  test('this process is alive, with and without its start time', async () => {
    const start = await processStartTime(process.pid);
    expect(start).toMatch(/^\d+$/);
    expect(await processAlive(process.pid)).toBe(true);
    expect(await processAlive(process.pid, start)).toBe(true);
  });

  test('a reused pid (another start time), an exited process and nonsense pids are not', async () => {
    const exited = spawnSync('true').pid;
    expect(await processAlive(process.pid, '1')).toBe(false);
    expect(await processAlive(exited)).toBe(false);
    for (const pid of [0, -1, Number.NaN, 1.5]) expect(await processAlive(pid)).toBe(false);
  });
});

describe('mountsUnder', () => {
  test('finds a mount point at or below a directory, and none in a plain directory', async () => {
    expect(await mountsUnder('/proc')).toContain('/proc');
    expect((await mountsUnder('/')).length).toBeGreaterThan(1);
    expect(await mountsUnder(await tempDir())).toEqual([]);
  });
});

describe('processesUnder', () => {
  test('finds a process working in a directory, and none once it ended', async () => {
    const dir = await tempDir();
    const child = spawn('sleep', ['30'], { cwd: dir });
    await new Promise((resolve) => child.once('spawn', resolve));
    expect(await processesUnder(dir)).toContain(child.pid);
    child.kill();
    await new Promise((resolve) => child.once('exit', resolve));
    expect(await processesUnder(dir)).toEqual([]);
  });
});

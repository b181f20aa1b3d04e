import { spawnSync } from 'node:child_process';
import { describe, expect, test } from 'vitest';
import { mountsUnder, processAlive, processStartTime } from '../../../src/store/process.js';
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

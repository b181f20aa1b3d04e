import { describe, expect, test } from 'vitest';
import { ConfigError, UserError } from '../../../src/errors.js';
import { forEachMachine, SeveralFailed } from '../../../src/instance/fanout.js';

const machines = [{ name: 'web' }, { name: 'db' }, { name: 'cache' }];
const options = { succeeded: 'halted', retry: 'try again' };

describe('forEachMachine', () => {
  test.each([true, false])('every machine is attempted even after a failure (parallel: %s)', async (parallel) => {
    const attempted: string[] = [];
    const error = await forEachMachine(
      machines,
      async (machine) => {
        attempted.push(machine.name);
        if (machine.name === 'web') throw new UserError('machine "web" is broken');
        return machine.name;
      },
      { ...options, parallel },
    ).catch((reason: unknown) => reason);
    expect(attempted.sort()).toEqual(['cache', 'db', 'web']);
    expect(error).toBeInstanceOf(SeveralFailed);
    expect((error as SeveralFailed).message).toBe('1 of 3 machines failed (db, cache halted):\n  - machine "web" is broken');
    expect((error as SeveralFailed).hint).toBe('try again');
    expect((error as SeveralFailed).exitCode).toBe(1);
  });

  test('each failure is listed, named by its machine, with the first failure exit code', async () => {
    const error = (await forEachMachine(
      machines,
      async (machine) => {
        if (machine.name === 'db') throw new ConfigError('bad record');
        if (machine.name === 'cache') throw new Error('boom');
        return 1;
      },
      { ...options, parallel: true },
    ).catch((reason: unknown) => reason)) as SeveralFailed;
    expect(error.message).toBe('2 of 3 machines failed (web halted):\n  - machine "db": bad record\n  - machine "cache": boom');
    expect(error.exitCode).toBe(78);
  });

  test('only bugs make the exit code 70', async () => {
    const error = (await forEachMachine(machines, async () => Promise.reject(new Error('bug')), { ...options, parallel: false }).catch((reason: unknown) => reason)) as SeveralFailed;
    expect(error.exitCode).toBe(70);
  });

  test('one machine: its own error, unchanged; all fine: results in order', async () => {
    const own = new UserError('machine "web" is not running');
    await expect(forEachMachine([{ name: 'web' }], async () => Promise.reject(own), { ...options, parallel: true })).rejects.toBe(own);
    expect(await forEachMachine(machines, async (machine) => machine.name.length, { ...options, parallel: true })).toEqual([3, 2, 5]);
  });
});

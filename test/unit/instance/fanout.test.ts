import { describe, expect, test } from 'vitest';
import { ConfigError, ExternalCommandError, UserError } from '../../../src/errors.js';
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

  test("a failed program's last lines of stderr are shown under its machine", async () => {
    const qemu = new ExternalCommandError('start QEMU: qemu-system-x86_64 exit code 1', 'qemu-system-x86_64', [], 'line 1\nqemu-system-x86_64: -chardev socket,id=fs0: Failed to connect to fs0.sock: Connection refused\n');
    const error = (await forEachMachine(
      machines,
      async (machine) => {
        if (machine.name === 'web') throw qemu;
        return 1;
      },
      { ...options, parallel: true },
    ).catch((reason: unknown) => reason)) as SeveralFailed;
    expect(error.message).toBe(
      '1 of 3 machines failed (db, cache halted):\n  - machine "web": start QEMU: qemu-system-x86_64 exit code 1\n      | line 1\n      | qemu-system-x86_64: -chardev socket,id=fs0: Failed to connect to fs0.sock: Connection refused',
    );
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

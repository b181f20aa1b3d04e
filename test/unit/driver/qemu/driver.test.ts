/**
 * The QEMU driver against the QMP seam: a process that /proc takes for the machine's
 * QEMU (its argv[0] and its disk, as the driver checks), and the fake QMP server on the
 * machine's socket. What is checked is what the driver asks QEMU, and what it refuses.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { afterEach, describe, expect, test } from 'vitest';
import { qemuDriver } from '../../../../src/driver/qemu/driver.js';
import { qemuFiles } from '../../../../src/driver/qemu/files.js';
import { FakeQmpServer, type FakeQmpHandler } from '../../qmp/fake-qmp-server.js';
import { tempDir } from '../../temp-dir.js';

const processes: ChildProcess[] = [];
const servers: FakeQmpServer[] = [];
afterEach(async () => {
  for (const child of processes.splice(0)) child.kill('SIGKILL');
  for (const server of servers.splice(0)) await server.stop();
});

/** A machine directory whose "QEMU" runs and answers QMP as `handlers` say. */
async function runningMachine(handlers: Record<string, FakeQmpHandler>) {
  const dir = await tempDir();
  await mkdir(dir, { recursive: true });
  const files = qemuFiles(dir);
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1e6)', `file=${files.overlay},if=virtio`], { argv0: 'qemu-system-x86_64', stdio: 'ignore' });
  processes.push(child);
  await new Promise((resolve) => child.once('spawn', resolve));
  await writeFile(files.pidFile, `${child.pid}\n`);
  const qmp = await FakeQmpServer.start({ socketPath: files.qmpSocket, handlers: { quit: () => { child.kill('SIGKILL'); return { return: {} }; }, ...handlers } });
  servers.push(qmp);
  return { dir, files, child, qmp, driver: qemuDriver('web', dir) };
}

const status = (running: boolean, state: string): FakeQmpHandler => () => ({ return: { running, status: state } });

describe('the QEMU driver', () => {
  test('a process is its machine only while /proc names its disk: pid, then none once it is gone', async () => {
    const { driver, child } = await runningMachine({});
    expect(await driver.pid()).toBe(child.pid);
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    expect(await driver.pid()).toBeUndefined();
  });

  test('a guest paused after its saved memory was loaded is continued; a running one is left alone', async () => {
    let running = false;
    const { driver, qmp } = await runningMachine({ 'query-status': () => ({ return: { running, status: running ? 'running' : 'paused' } }), cont: () => ((running = true), { return: {} }) });
    expect(await driver.paused()).toBe(true);
    expect(await driver.continue()).toBe(true);
    expect(await driver.continue()).toBe(false);
    expect(qmp.requests.filter((request) => request.execute === 'cont')).toHaveLength(1);
  });

  test('only a guest stopped by a disk write error is continued by continueAfterIoError', async () => {
    const { driver, qmp } = await runningMachine({ 'query-status': status(false, 'paused'), cont: () => ({ return: {} }) });
    expect(await driver.continueAfterIoError()).toBe(false);
    qmp.handle('query-status', status(false, 'io-error'));
    expect(await driver.continueAfterIoError()).toBe(true);
    expect(qmp.requests.map((request) => request.execute).filter((command) => command === 'cont')).toHaveLength(1);
  });

  test('a halt of a paused guest does not wait for a power button it cannot answer: straight to quit', async () => {
    const { driver, qmp } = await runningMachine({ 'query-status': status(false, 'paused'), system_powerdown: () => ({ return: {} }) });
    const started = Date.now();
    expect(await driver.stop({ graceful: true, timeoutMs: 60_000 })).toBe('forced');
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(qmp.requests.map((request) => request.execute)).not.toContain('system_powerdown');
    expect(qmp.requests.map((request) => request.execute)).toContain('quit');
    expect(await driver.pid()).toBeUndefined();
  });

  test('a halt of a running guest presses the power button first', async () => {
    const { driver, qmp, child } = await runningMachine({ 'query-status': status(true, 'running'), system_powerdown: () => (setTimeout(() => child.kill('SIGKILL'), 100), { return: {} }) });
    expect(await driver.stop({ graceful: true, timeoutMs: 10_000 })).toBe('clean');
    expect(qmp.requests.map((request) => request.execute)).toContain('system_powerdown');
    expect(qmp.requests.map((request) => request.execute)).not.toContain('quit');
  });

  test('a snapshot of a running machine is savevm (memory and disk), after QEMU says how much memory there is; a taken name is refused before', async () => {
    const hmp: string[] = [];
    const { driver, files, qmp } = await runningMachine({
      'query-memory-size-summary': () => ({ return: { 'base-memory': 1024 ** 3 } }),
      'human-monitor-command': (request) => (hmp.push(String(request.arguments?.['command-line'])), { return: '' }),
    });
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', files.overlay, '16M']);
    expect(await driver.saveSnapshot('before')).toEqual({ memory: true });
    expect(hmp).toEqual(['savevm before']);
    expect(qmp.requests.map((request) => request.execute)).toContain('query-memory-size-summary');
    execFileSync('qemu-img', ['snapshot', '-c', 'taken', files.overlay]);
    await expect(driver.saveSnapshot('taken')).rejects.toThrow('already has a snapshot "taken"');
    expect(hmp).toEqual(['savevm before']);
  });

  test('saving a warm state needs a running machine; a stopped one is refused with what to do', async () => {
    const dir = await tempDir();
    await expect(qemuDriver('web', dir).saveState(`${dir}/memory.state`)).rejects.toThrow('machine "web" is not running, so there is no state to save');
  });
});

/**
 * The built CLI (`node bin/vmfile.js`, as a user runs it) against a Vmfile that never
 * finishes loading, and under signals. It boots nothing, so it runs with the unit tests;
 * it needs `npm run build` first. A vmfile that hangs is killed with SIGKILL after each
 * test, so a regression fails here instead of hanging the run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { afterEach, beforeAll, describe, expect, test } from 'vitest';
import { tempDir } from '../temp-dir.js';

const repoRoot = resolve(import.meta.dirname, '..', '..', '..');

/** The load limit of src/project/load.ts, and what a busy machine adds to it (node and oclif start first). */
const LOAD_LIMIT_MS = 10_000;
const MARGIN_MS = 5_000;

interface Exit {
  code: number | null;
  stderr: string;
  /** performance.now() when the process ended. */
  at: number;
}

const started: ChildProcess[] = [];

afterEach(() => {
  for (const child of started.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

beforeAll(() => {
  // The built files this test runs must be newer than their sources, or it tests old code.
  for (const source of ['cli/main.ts', 'exec.ts', 'project/load.ts', 'project/load-worker.ts']) {
    const built = join(repoRoot, 'dist', source.replace(/\.ts$/, '.js'));
    if (!existsSync(join(repoRoot, 'src', source))) continue;
    if (!existsSync(built) || statSync(built).mtimeMs < statSync(join(repoRoot, 'src', source)).mtimeMs) {
      throw new Error(`dist/ is missing or older than src/${source}: run npm run build first`);
    }
  }
});

function vmfile(args: readonly string[], cwd: string, env: Record<string, string> = {}): { child: ChildProcess; exit: Promise<Exit> } {
  const child = spawn(process.execPath, [join(repoRoot, 'bin', 'vmfile.js'), ...args], {
    cwd,
    env: { ...process.env, VMFILE_HOME: join(cwd, 'home'), ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  started.push(child);
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exit = new Promise<Exit>((resolvePromise) => child.on('close', (code) => resolvePromise({ code, stderr, at: performance.now() })));
  return { child, exit };
}

/** The exit, or a failure naming what was awaited once `ms` have passed. */
async function within(exit: Promise<Exit>, ms: number, what: string): Promise<Exit> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`vmfile still running ${ms} ms after ${what}`)), ms);
  });
  try {
    return await Promise.race([exit, late]);
  } finally {
    clearTimeout(timer);
  }
}

const sleep = (ms: number) => new Promise((resolvePromise) => setTimeout(resolvePromise, ms));

async function loopingProject(): Promise<string> {
  const dir = await tempDir();
  await writeFile(join(dir, 'Vmfile.ts'), `for (;;) {}\nexport default { box: 'debian-12' };\n`);
  return dir;
}

describe('a Vmfile that loops for ever', () => {
  test('validate exits 78 at the load limit, naming the file and the limit', async () => {
    const dir = await loopingProject();
    const start = performance.now();

    const result = await within(vmfile(['validate'], dir).exit, LOAD_LIMIT_MS + MARGIN_MS, 'its start');

    expect(result.code).toBe(78);
    expect(result.at - start).toBeGreaterThanOrEqual(LOAD_LIMIT_MS);
    expect(result.stderr).toContain(`error: ${join(dir, 'Vmfile.ts')} did not finish loading within 10 s`);
  }, 25_000);

  test.each([
    ['SIGTERM', 143],
    ['SIGINT', 130],
    ['SIGHUP', 129],
  ] as const)('%s one second after the start ends vmfile within a second, exit %i', async (signal, code) => {
    const dir = await loopingProject();
    const run = vmfile(['validate'], dir);
    await sleep(1000);

    const sent = performance.now();
    run.child.kill(signal);
    const result = await within(run.exit, 3000, `${signal}`);

    expect(result.at - sent).toBeLessThan(1000);
    expect(result.code).toBe(code);
    expect(result.stderr).toContain(`error: interrupted by ${signal}\n`);
    expect(result.stderr.match(/interrupted by/g)).toHaveLength(1);
  }, 10_000);
});

describe('a signal while vmfile waits for a program', () => {
  /**
   * A stand-in for qemu-img that takes 2 s to clean up after a signal, longer than vmfile
   * may stay: it logs each signal it gets and when it is done, to a file, never to the
   * pipes vmfile reads (those close when vmfile exits).
   */
  const FAKE_QEMU_IMG = (log: string) => `#!${process.execPath}
const { appendFileSync } = require('node:fs');
const log = (line) => appendFileSync(${JSON.stringify(log)}, line + '\\n');
log('started');
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(signal, () => {
  log(signal);
  setTimeout(() => { log('cleaned up'); process.exit(1); }, 2000);
});
setTimeout(() => {}, 60000);
`;

  test('SIGTERM reaches the program, vmfile exits 143 within a second, the program finishes its cleanup alone', async () => {
    const dir = await tempDir();
    const log = join(dir, 'qemu-img.log');
    await writeFile(join(dir, 'qemu-img'), FAKE_QEMU_IMG(log));
    await chmod(join(dir, 'qemu-img'), 0o755);
    // A qcow2 version 2 header with nothing in it is all vmfile reads before it asks qemu-img.
    const header = Buffer.alloc(512);
    header.writeUInt32BE(0x514649fb, 0);
    header.writeUInt32BE(2, 4);
    await writeFile(join(dir, 'disk.qcow2'), header);
    const run = vmfile(['box', 'add', 'test', './disk.qcow2'], dir, { PATH: `${dir}:${process.env['PATH'] ?? ''}` });
    const readLog = async () => (existsSync(log) ? await readFile(log, 'utf8') : '');
    for (let waited = 0; !(await readLog()).includes('started'); waited += 50) {
      if (waited > 8000) throw new Error(`the fake qemu-img never ran; vmfile said: ${await within(run.exit, 100, 'the wait').then((exit) => exit.stderr, () => '(still running)')}`);
      await sleep(50);
    }

    const sent = performance.now();
    run.child.kill('SIGTERM');
    const result = await within(run.exit, 3000, 'SIGTERM');

    expect(result.at - sent).toBeLessThan(1000);
    expect(result.code).toBe(143);
    expect(result.stderr).toContain('error: interrupted by SIGTERM\n');
    expect(await readLog()).toBe('started\nSIGTERM\n');
    // Told once, then left alone: no second signal when vmfile exits.
    await sleep(2500);
    expect(await readLog()).toBe('started\nSIGTERM\ncleaned up\n');
  }, 15_000);
});

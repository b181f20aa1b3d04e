/**
 * Runs the built CLI the way a user does (node bin/<name>.js), in a project directory,
 * against the test box store. Every e2e test goes through here.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { expect, inject } from 'vitest';

export const repoRoot = resolve(import.meta.dirname, '..', '..');

export interface CliResult {
  code: number;
  /** The signal that ended it, when one did. */
  signal?: NodeJS.Signals;
  stdout: string;
  stderr: string;
  seconds: number;
}

export interface CliOptions {
  cwd: string;
  env?: Record<string, string>;
  timeoutMs?: number;
  /**
   * Called with the output so far (stdout and stderr, interleaved) each time more
   * arrives, and with the child: fault injection kills it, or QEMU, at a chosen point.
   * The child leads its own process group, so a test can signal the group as a
   * terminal's Ctrl-C does.
   */
  onOutput?: (output: string, child: ChildProcess) => void;
  /** Called with the child as soon as it is spawned (for faults not tied to output). */
  onSpawn?: (child: ChildProcess) => void;
  /** Run inside this network namespace (one a test made: libvirt-host.ts). */
  netns?: string;
  /** A command the CLI runs under (after the namespace), e.g. ['unshare', '--uts', 'sh', '-c', 'hostname x; exec "$@"', 'sh']. */
  wrap?: readonly string[];
}

/** `bin` is vmfile, vmup, vmssh or vmhalt. */
export function cli(bin: 'vmfile' | 'vmup' | 'vmssh' | 'vmhalt', args: readonly string[], options: CliOptions): Promise<CliResult> {
  const started = performance.now();
  return new Promise((resolvePromise, reject) => {
    const argv = [...(options.wrap ?? []), process.execPath, join(repoRoot, 'bin', `${bin}.js`), ...args];
    const [program = '', ...rest] = options.netns === undefined ? argv : ['ip', 'netns', 'exec', options.netns, ...argv];
    const child = spawn(program, rest, {
      cwd: options.cwd,
      env: { ...process.env, VMFILE_HOME: inject('vmfileHome'), ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: options.onOutput !== undefined || options.onSpawn !== undefined,
    });
    options.onSpawn?.(child);
    let stdout = '';
    let stderr = '';
    let output = '';
    const onOutput = options.onOutput;
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      output += chunk.toString();
      onOutput?.(output, child);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      output += chunk.toString();
      if (process.env['VMFILE_E2E_VERBOSE'] === '1') process.stderr.write(chunk);
      onOutput?.(output, child);
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${bin} ${args.join(' ')} did not finish in ${options.timeoutMs ?? 600_000} ms\nstderr:\n${stderr}`));
    }, options.timeoutMs ?? 600_000);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const seconds = (performance.now() - started) / 1000;
      if (process.env['VMFILE_E2E_VERBOSE'] === '1') process.stderr.write(`[e2e] ${bin} ${args.join(' ')}: exit ${signal ?? code} after ${seconds.toFixed(1)} s\n`);
      resolvePromise({ code: code ?? -1, ...(signal === null ? {} : { signal }), stdout, stderr, seconds });
    });
  });
}

/**
 * The machine shape of the tests that are not about booting. They start from the warm
 * state of this shape (lifecycle/warm.ts), which the first of them makes once in the test
 * store: about 10 s to SSH instead of about 70 s for a cold boot under TCG. Warm start is
 * the default, but a test says so, since its shape is what shares the state. Tests about
 * booting (kill, faults at boot, multi, reproducible) say warmStart: false; firmware and
 * libvirt machines cannot start warm.
 */
export const WARM_SHAPE = "cpus: 2, memory: '1GiB', disk: '4GiB', warmStart: true";

/**
 * A vmfile home of the test's own holding the test store's boxes (hard links where the
 * store is on the same file system, a copy where it is not), for a test whose assertions
 * are about the whole home (its warm states, what prune removes) and must not see what
 * other files leave in the shared one. Its warm states are made in it again.
 */
export async function homeWithBoxes(prefix: string): Promise<string> {
  const home = await mkdtemp(join(tmpdir(), prefix));
  const [shared, own] = [join(inject('vmfileHome'), 'boxes'), join(home, 'boxes')];
  try {
    execFileSync('cp', ['-al', shared, own], { stdio: 'ignore' });
  } catch {
    await rm(own, { recursive: true, force: true });
    execFileSync('cp', ['-a', shared, own]);
  }
  return home;
}

/** A fresh project directory holding the given Vmfile.ts source (and extra files). */
export async function makeProject(vmfile: string, files: Record<string, string> = {}): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'vmfile-e2e-'));
  await writeFile(join(dir, 'Vmfile.ts'), vmfile);
  for (const [name, content] of Object.entries(files)) await writeFile(join(dir, name), content, { mode: 0o755 });
  return dir;
}

/** cli() for a command that must succeed: the test fails with what the CLI said when it does not. */
export async function cliOk(bin: 'vmfile' | 'vmup' | 'vmssh' | 'vmhalt', args: readonly string[], options: CliOptions): Promise<CliResult> {
  const result = await cli(bin, args, options);
  expect(result.code, explain(result)).toBe(0);
  return result;
}

/** Includes the outputs in assertion failures, so a CI log shows what the CLI said. */
export function explain(result: CliResult): string {
  return `exit ${result.signal ?? result.code} after ${result.seconds.toFixed(1)} s\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;
}

declare module 'vitest' {
  export interface ProvidedContext {
    vmfileHome: string;
    /** Holds cloud.qcow2 and vagrant.box (test/images/build.sh). */
    testImages: string;
  }
}

/** Whether a process still runs; an exited one may linger as a zombie until reaped. */
export function processRunning(pid: number): boolean {
  try {
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** Pids of processes whose command line contains every one of `texts`. */
export async function processesNaming(...texts: string[]): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const argv = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (texts.every((text) => argv.includes(text))) pids.push(Number(entry));
  }
  return pids;
}

/** Pids of network switches (hub processes) serving this socket. */
export function hubsFor(socket: string): Promise<number[]> {
  return processesNaming('hub-main.js', socket);
}

/** Whether something accepts a TCP connection on 127.0.0.1:port right now. */
export function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** A TCP port on 127.0.0.1 that nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.once('error', reject);
  });
}

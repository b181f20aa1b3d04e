/**
 * Runs the built CLI the way a user does (node bin/<name>.js), in a project directory,
 * against the test box store. Every e2e test goes through here.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { inject } from 'vitest';

export const repoRoot = resolve(import.meta.dirname, '..', '..');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  seconds: number;
}

export interface CliOptions {
  cwd: string;
  env?: Record<string, string>;
  timeoutMs?: number;
}

/** `bin` is vmfile, vmup, vmssh or vmhalt. */
export function cli(bin: 'vmfile' | 'vmup' | 'vmssh' | 'vmhalt', args: readonly string[], options: CliOptions): Promise<CliResult> {
  const started = performance.now();
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [join(repoRoot, 'bin', `${bin}.js`), ...args], {
      cwd: options.cwd,
      env: { ...process.env, VMFILE_HOME: inject('vmfileHome'), ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (process.env['VMFILE_E2E_VERBOSE'] === '1') process.stderr.write(chunk);
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${bin} ${args.join(' ')} did not finish in ${options.timeoutMs ?? 600_000} ms\nstderr:\n${stderr}`));
    }, options.timeoutMs ?? 600_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolvePromise({ code: code ?? -1, stdout, stderr, seconds: (performance.now() - started) / 1000 });
    });
  });
}

/** A fresh project directory holding the given Vmfile.ts source (and extra files). */
export async function makeProject(vmfile: string, files: Record<string, string> = {}): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'vmfile-e2e-'));
  await writeFile(join(dir, 'Vmfile.ts'), vmfile);
  for (const [name, content] of Object.entries(files)) await writeFile(join(dir, name), content, { mode: 0o755 });
  return dir;
}

/** Includes the outputs in assertion failures, so a CI log shows what the CLI said. */
export function explain(result: CliResult): string {
  return `exit ${result.code} after ${result.seconds.toFixed(1)} s\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;
}

declare module 'vitest' {
  export interface ProvidedContext {
    vmfileHome: string;
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

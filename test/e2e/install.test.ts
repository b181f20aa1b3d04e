/**
 * vmfile installed as a user installs a CLI: `npm pack`, then `npm install -g` of that
 * tarball (into a prefix of the test's own, which is what -g does with the default prefix).
 * From a directory far from the checkout, the four programs work, the example boots, a
 * Vmfile from `vmfile init` type-checks with `tsc --noEmit` against the installed copy
 * (no node_modules in the project), and README's completion line covers all four names.
 * The same type check runs against this checkout, which is what `npm link` gives.
 */
import { execFile, execFileSync } from 'node:child_process';
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { repoRoot } from './cli.js';
import { completions, inShell, readmeCompletionLines } from './shell.js';

const run = promisify(execFile);
const tsc = join(repoRoot, 'node_modules', '.bin', 'tsc');

/** `tsc --noEmit` in `dir`, as a user runs it: its exit code and what it printed. */
async function typeCheck(dir: string): Promise<{ code: number; output: string }> {
  try {
    const { stdout } = await run(tsc, ['--noEmit'], { cwd: dir });
    return { code: 0, output: stdout };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, output: `${failed.stdout}${failed.stderr}` };
  }
}

/** A project from `vmfile init` (by the given program), then checked by tsc as written and with a mistake. */
async function initAndCheck(vmfile: string[], env: NodeJS.ProcessEnv): Promise<{ dir: string; clean: { code: number; output: string }; wrong: { code: number; output: string } }> {
  const dir = await mkdtemp(join(tmpdir(), 'vmfile-types-'));
  const [program = '', ...args] = vmfile;
  await run(program, [...args, 'init'], { cwd: dir, env });
  const clean = await typeCheck(dir);
  const source = await readFile(join(dir, 'Vmfile.ts'), 'utf8');
  // A number where a size string belongs, and a Node global the Vmfile may read.
  await writeFile(join(dir, 'Vmfile.ts'), source.replace("memory: '1GiB'", 'memory: 1024').replace('export default', "const ci: string | undefined = process.env['CI'];\nvoid ci;\nexport default"));
  const wrong = await typeCheck(dir);
  return { dir, clean, wrong };
}

describe('installed with npm install -g from npm pack', () => {
  let work: string;
  let prefix: string;
  let env: NodeJS.ProcessEnv;
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'vmfile-install-'));
    prefix = join(work, 'prefix');
    // dist/ is built already (the e2e run needs it); the prepack script would build it again.
    execFileSync('npm', ['pack', '--ignore-scripts', '--pack-destination', work], { cwd: repoRoot, stdio: 'ignore' });
    const tarball = (await readdir(work)).find((name) => name.endsWith('.tgz'));
    if (tarball === undefined) throw new Error(`npm pack wrote no tarball into ${work}`);
    execFileSync('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', join(work, tarball)], { cwd: work, stdio: 'ignore' });
    env = { ...process.env, PATH: `${join(prefix, 'bin')}:${process.env['PATH'] ?? ''}`, VMFILE_HOME: inject('vmfileHome') };
  }, 300_000);
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('puts vmfile, vmup, vmssh and vmhalt on PATH, running the installed copy', async () => {
    for (const program of ['vmfile', 'vmup', 'vmssh', 'vmhalt']) {
      const { stdout } = await run(program, ['--help'], { cwd: work, env });
      expect(stdout, program).toMatch(/USAGE/);
    }
    const { stdout } = await run('sh', ['-c', 'command -v vmfile'], { env });
    expect(stdout.trim()).toBe(join(prefix, 'bin', 'vmfile'));
  });

  it('a Vmfile from vmfile init type-checks with tsc --noEmit against the installed copy, without node_modules', async () => {
    const { dir, clean, wrong } = await initAndCheck(['vmfile'], env);
    expect(clean, clean.output).toEqual({ code: 0, output: '' });
    expect((await readdir(dir)).sort()).toEqual(['.gitignore', '.vmfile', 'Vmfile.ts', 'tsconfig.json']);
    const config = await readFile(join(dir, '.vmfile', 'tsconfig.json'), 'utf8');
    expect(config).toContain(join(prefix, 'lib', 'node_modules', 'vmfile', 'dist', 'index.d.ts'));
    // The mistake is found, at its line; process.env is typed (Node's types come with vmfile).
    expect(wrong.code).toBe(2);
    expect(wrong.output).toMatch(/Vmfile\.ts\(\d+,\d+\): error TS2322: Type 'number' is not assignable to type 'string'/);
    expect(wrong.output).not.toMatch(/process/);
    await rm(dir, { recursive: true, force: true });
  });

  it("README's completion line, in a fresh HOME, completes all four programs", async () => {
    const home = join(work, 'home');
    execFileSync('mkdir', ['-p', home]);
    const { bash } = await readmeCompletionLines();
    execFileSync('bash', ['-c', bash], { env: { PATH: env['PATH'], HOME: home } });
    const bin = join(prefix, 'bin');
    expect(inShell('bash', home, bin, 'complete -p vmfile vmup vmssh vmhalt').trim().split('\n')).toHaveLength(4);
    expect(completions('bash', home, bin, 'vmfile', 'snap')).toEqual(['snapshot']);
    expect(completions('bash', home, bin, 'vmhalt', '--ti')).toEqual(['--timeout']);
  });

  it('boots the example from any directory: vmup, vmssh, vmhalt', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vmfile-example-'));
    await cp(join(repoRoot, 'Vmfile.example.ts'), join(dir, 'Vmfile.ts'));
    await cp(join(repoRoot, 'example'), join(dir, 'example'), { recursive: true });
    try {
      await run('vmup', [], { cwd: dir, env, timeout: 600_000 });
      const inside = await run('vmssh', ['-c', 'cat /etc/motd ~/hello.txt; ls /home/vm/data'], { cwd: dir, env });
      expect(inside.stdout).toBe('built by vmfile\nhello from vmfile (example, 2 CPUs, LANG=C.UTF-8)\nREADME.txt\n');
      await run('vmhalt', [], { cwd: dir, env, timeout: 120_000 });
      const status = await run('vmfile', ['status', '--json'], { cwd: dir, env });
      expect((JSON.parse(status.stdout) as { status: string }[]).map((entry) => entry.status)).toEqual(['halted']);
    } finally {
      await run('vmfile', ['destroy', '-f'], { cwd: dir, env }).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    }
  }, 900_000);
});

describe('run from this checkout (as npm link gives it)', () => {
  it('a Vmfile from vmfile init type-checks against the checkout', async () => {
    const { dir, clean, wrong } = await initAndCheck([process.execPath, join(repoRoot, 'bin', 'vmfile.js')], process.env);
    expect(clean, clean.output).toEqual({ code: 0, output: '' });
    expect(await readFile(join(dir, '.vmfile', 'tsconfig.json'), 'utf8')).toContain(join(repoRoot, 'dist', 'index.d.ts'));
    expect(wrong.code).toBe(2);
    expect(wrong.output).toMatch(/error TS2322/);
    await rm(dir, { recursive: true, force: true });
  });
});

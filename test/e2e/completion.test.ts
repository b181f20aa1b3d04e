/**
 * Shell completion set up by README's one line, in a fresh HOME, then asked for
 * completions the way bash (and zsh, through bashcompinit) asks them. The programs are
 * this checkout's bin/ files, on PATH by name as an installed vmfile's are (install.test.ts
 * does the same from an installed tarball). Boots nothing.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from './cli.js';
import { completions, inShell, readmeCompletionLines } from './shell.js';

describe('shell completion from README', () => {
  let home: string;
  let bin: string;
  beforeAll(async () => {
    home = await mkdtemp(join(tmpdir(), 'vmfile-completion-'));
    bin = join(home, 'bin');
    execFileSync('mkdir', [bin]);
    for (const name of ['vmfile', 'vmup', 'vmssh', 'vmhalt']) await symlink(join(repoRoot, 'bin', `${name}.js`), join(bin, name));
    const lines = await readmeCompletionLines();
    await writeFile(join(home, '.zshrc'), '');
    // README's lines, run as a user would paste them.
    execFileSync('bash', ['-c', `${lines.bash}\n${lines.zsh}`], { env: { PATH: `${bin}:${process.env['PATH'] ?? ''}`, HOME: home } });
  });
  afterAll(async () => {
    await rm(home, { recursive: true, force: true });
  });

  it.each(['bash', 'zsh'] as const)('%s: a new shell completes all four programs', (shell) => {
    expect(inShell(shell, home, bin, 'complete -p vmfile vmup vmssh vmhalt')).toMatch(/complete .*-F _vmfile_complete .*vmhalt/s);
  });

  it.each(['bash', 'zsh'] as const)('%s: commands, topics with spaces, flags, and the shorthands', (shell) => {
    expect(completions(shell, home, bin, 'vmfile', 'glo')).toEqual(['global-status']);
    expect(completions(shell, home, bin, 'vmfile', 'snapshot', 'sa')).toEqual(['save']);
    expect(completions(shell, home, bin, 'vmfile', 'status', '--j')).toEqual(['--json']);
    expect(completions(shell, home, bin, 'vmfile', 'box', 'add', '--ch')).toEqual(['--checksum']);
    expect(completions(shell, home, bin, 'vmup', '--no-')).toEqual(['--no-cache', '--no-provision']);
    expect(completions(shell, home, bin, 'vmhalt', '--f')).toEqual(['--force']);
    expect(completions(shell, home, bin, 'vmssh', '-')).toContain('-c');
    // After a whole command, the shell's own file names: nothing from vmfile.
    expect(completions(shell, home, bin, 'vmfile', 'up', 'x')).toEqual([]);
  });
});

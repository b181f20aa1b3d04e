/**
 * Shell completion through oclif's autocomplete plugin, installed the way the README
 * says (the line `vmfile autocomplete script bash` prints goes into ~/.bashrc), then
 * asked for completions as bash asks them. Boots nothing.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, explain } from './cli.js';

describe('bash completion', () => {
  let home: string;
  let setup: string;
  beforeAll(async () => {
    home = await mkdtemp(join(tmpdir(), 'vmfile-completion-'));
    const env = { HOME: home, XDG_CACHE_HOME: join(home, '.cache') };
    const result = await cli('vmfile', ['autocomplete', 'script', 'bash'], { cwd: home, env });
    expect(result.code, explain(result)).toBe(0);
    setup = result.stdout.trim();
    // The plugin builds its cache on first use; the README's command does it too.
    const built = await cli('vmfile', ['autocomplete', 'bash'], { cwd: home, env });
    expect(built.code, explain(built)).toBe(0);
  });
  afterAll(async () => {
    await rm(home, { recursive: true, force: true });
  });

  const complete = (...words: string[]) =>
    execFileSync('bash', ['-c', `${setup}\nCOMP_WORDS=(${words.map((word) => `'${word}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _vmfile_autocomplete; printf '%s\\n' "\${COMPREPLY[@]}"`], {
      env: { ...process.env, HOME: home, XDG_CACHE_HOME: join(home, '.cache') },
    })
      .toString()
      .trim()
      .split('\n');

  it('completes commands, topics with spaces, and flags', () => {
    expect(complete('vmfile', 'glo')).toEqual(['global-status']);
    expect(complete('vmfile', 'snapshot', 'sa')).toEqual(['save']);
    expect(complete('vmfile', 'status', '--j')).toEqual(['--json']);
  });
});

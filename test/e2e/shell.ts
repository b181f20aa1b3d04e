/** Shells as a user has them: README's completion lines, an interactive shell, and what completion offers. */
import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { repoRoot } from './cli.js';

/** The completion lines README gives, for bash and for zsh. */
export async function readmeCompletionLines(): Promise<{ bash: string; zsh: string }> {
  const readme = await readFile(join(repoRoot, 'README.md'), 'utf8');
  const line = (rc: string) => readme.split('\n').find((text) => text.includes('vmfile completion') && text.includes(rc))?.replace(/^\s*/, '').replace(/\s+#.*$/, '');
  const bash = line('~/.bashrc');
  const zsh = line('~/.zshrc');
  if (bash === undefined || zsh === undefined) throw new Error('README.md gives no completion line for ~/.bashrc and ~/.zshrc');
  return { bash, zsh };
}

/** Runs `script` in an interactive shell of `HOME=home`, with `bin` first on PATH; its stdout. */
export function inShell(shell: 'bash' | 'zsh', home: string, bin: string, script: string): string {
  return execFileSync(shell, ['-i', '-c', script], { env: { PATH: `${bin}:${process.env['PATH'] ?? ''}`, HOME: home, TERM: 'dumb' }, stdio: ['ignore', 'pipe', 'pipe'] }).toString();
}

/** What the completion function offers for `words` (the last one being completed). */
export function completions(shell: 'bash' | 'zsh', home: string, bin: string, ...words: string[]): string[] {
  const array = words.map((word) => `'${word}'`).join(' ');
  // As bash and zsh's bashcompinit call it: the words, and the index of the one completed.
  const output = inShell(shell, home, bin, `COMP_WORDS=(${array}); COMP_CWORD=${words.length - 1}; _vmfile_complete; printf '%s\\n' "\${COMPREPLY[@]}"`);
  return output.split('\n').filter((line) => line !== '');
}

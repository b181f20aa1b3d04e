import { execFileSync } from 'node:child_process';
import { describe, expect, test } from 'vitest';
import { completionScript } from '../../../src/cli/completion-script.js';

const commands = [
  { id: 'up', flags: ['--json', '--no-provision', '--provision'] },
  { id: 'snapshot save', flags: ['--machine', '-m'] },
  { id: 'snapshot list', flags: ['--json'] },
  { id: 'status', flags: [] },
];

/** What the script offers for `words` in bash. */
function offered(...words: string[]): string[] {
  const script = `${completionScript('bash', commands)}\nCOMP_WORDS=(${words.map((word) => `'${word}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _vmfile_complete; printf '%s\\n' "\${COMPREPLY[@]}"`;
  return execFileSync('bash', ['-c', script]).toString().split('\n').filter((line) => line !== '');
}

describe('completion script', () => {
  test('offers commands and topics, then a topic\'s commands, then a command\'s flags', () => {
    expect(offered('vmfile', '')).toEqual(['snapshot', 'status', 'up']);
    expect(offered('vmfile', 's')).toEqual(['snapshot', 'status']);
    expect(offered('vmfile', 'snapshot', '')).toEqual(['list', 'save']);
    expect(offered('vmfile', 'snapshot', 'save', '-')).toEqual(['--machine', '-m']);
    expect(offered('vmfile', 'up', '--p')).toEqual(['--provision']);
  });

  test('the shorthands are their commands', () => {
    expect(offered('vmup', '--')).toEqual(['--json', '--no-provision', '--provision']);
    expect(offered('/usr/local/bin/vmup', '--j')).toEqual(['--json']);
  });

  test('after a whole command, or a word it does not know, it offers nothing (the shell completes file names)', () => {
    expect(offered('vmfile', 'status', 'x')).toEqual([]);
    expect(offered('vmfile', 'nope', 'x')).toEqual([]);
    expect(completionScript('bash', commands)).toContain('complete -o default -F _vmfile_complete vmfile vmup vmssh vmhalt');
  });

  test('zsh loads bash compatibility and runs the same function with bash array rules', () => {
    const script = completionScript('zsh', commands);
    expect(script).toContain('bashcompinit');
    expect(script).toContain('setopt local_options ksh_arrays sh_word_split');
  });

  test('refuses a command or flag name that is not a plain word, rather than write it into a shell script', () => {
    expect(() => completionScript('bash', [{ id: "up'; rm -rf ~; '", flags: [] }])).toThrow(/cannot be completed safely/);
    expect(() => completionScript('bash', [{ id: 'up', flags: ['--$(id)'] }])).toThrow(/cannot be completed safely/);
  });
});

import { execFileSync } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { describe, expect, test } from 'vitest';
import { shellCommand, shellQuote } from '../../../src/ssh/quote.js';
import { tempDir } from '../temp-dir.js';

/**
 * The words a POSIX shell sees when it parses `shellCommand(words)` as printf's
 * arguments. Each is NUL-terminated, so words containing newlines come back exactly.
 */
function wordsSeenByShell(words: readonly string[], cwd?: string): string[] {
  const output = execFileSync('sh', ['-c', `printf '%s\\0' ${shellCommand(words)}`], { encoding: 'utf8', ...(cwd === undefined ? {} : { cwd }) });
  return output.split('\0').slice(0, -1);
}

describe('shellQuote', () => {
  test.each([
    ['plain', 'plain'],
    ['/usr/bin/env', '/usr/bin/env'],
    ['KEY=value', 'KEY=value'],
    ['user@host:22', 'user@host:22'],
    ['-rT', '-rT'],
    ['50%+1', '50%+1'],
    ['', "''"],
    ['two words', "'two words'"],
    ["it's", "'it'\\''s'"],
    ['$(touch /tmp/pwned)', "'$(touch /tmp/pwned)'"],
    ['`id`', "'`id`'"],
    ['*', "'*'"],
    ['~', "'~'"],
    ['a\nb', "'a\nb'"],
  ])('%j -> %s', (word, quoted) => {
    expect(shellQuote(word)).toBe(quoted);
  });
});

describe('shellCommand through a real sh', () => {
  test.each<[string, string[]]>([
    ['plain words', ['echo', 'hello', 'world']],
    ['spaces', ['two words', '  leading and trailing  ']],
    ['single quotes', ["it's", "'", "''", "a'b'c"]],
    ['double quotes', ['"quoted"', '"', 'say "hi"']],
    ['command substitution', ['$(touch pwned)', '`touch pwned`', '$((1+1))']],
    ['variables', ['$HOME', '${PATH}', '$1', '$@', '$?']],
    ['globs and tilde', ['*', '?', '[a-z]', '~', '~root']],
    ['operators', [';', '&&', '||', '|', '>', '<', '&', '#comment', '(', ')', '{', '}']],
    ['backslashes', ['\\', 'a\\nb', '\\\\']],
    ['newlines and tabs', ['line1\nline2', '\t', 'tab\there']],
    ['unicode', ['héllo', '日本語', '🙂']],
    ['an option-looking word', ['--', '-n', '-e']],
  ])('%s', (_label, words) => {
    expect(wordsSeenByShell(words)).toEqual(words);
  });

  test('an empty string stays an empty argument', () => {
    expect(wordsSeenByShell(['a', '', 'b'])).toEqual(['a', '', 'b']);
  });

  test('arguments are counted exactly, nothing split or merged', () => {
    const words = ['a b', '', "c'd", '$(x) y', '*'];
    const output = execFileSync('sh', ['-c', `set -- ${shellCommand(words)}; echo $#`], { encoding: 'utf8' });
    expect(output.trim()).toBe(String(words.length));
  });

  test('no substitution is ever executed', async () => {
    const dir = await tempDir();
    wordsSeenByShell(['$(touch pwned)', '`touch pwned2`', '; touch pwned3'], dir);
    expect(await readdir(dir)).toEqual([]);
  });
});

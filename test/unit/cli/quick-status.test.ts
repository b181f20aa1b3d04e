/**
 * `vmfile status`'s quick path: the forms it takes (any other goes to the full command),
 * the same lines as the full command for a project with machines not created, and a
 * failure vmfile expects reported as the full command reports it, with its exit code.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { quickStatus, quickStatusForm } from '../../../src/cli/quick-status.js';
import { tempDir } from '../temp-dir.js';

describe("vmfile status's quick path", () => {
  afterEach(() => vi.restoreAllMocks());

  test.each([
    [[], { machines: [], json: false }],
    [['--json'], { machines: [], json: true }],
    [['web', 'db', '--json'], { machines: ['web', 'db'], json: true }],
  ])('takes %j', (argv, form) => {
    expect(quickStatusForm(argv)).toEqual(form);
  });

  test.each([[['--help']], [['--vmfile', 'x.ts']], [['--debug']], [['Web']], [['-h']]])('leaves %j to the full command', (argv) => {
    expect(quickStatusForm(argv)).toBeUndefined();
  });

  function capture(stream: NodeJS.WriteStream): string[] {
    const written: string[] = [];
    vi.spyOn(stream, 'write').mockImplementation((chunk: string | Uint8Array) => written.push(String(chunk)) > 0);
    return written;
  }

  test('prints a line per machine, as the full command does', async () => {
    const dir = join(await tempDir(), 'p');
    await mkdir(dir);
    await writeFile(join(dir, 'Vmfile.ts'), "export default { defaults: { box: 'debian-12', folders: [] }, machines: { web: {}, db: {} } };\n");
    const out = capture(process.stdout);
    expect(await quickStatus([], dir)).toBe(0);
    expect(out.join('')).toBe(`${'web'.padEnd(12)} not created\n${'db'.padEnd(12)} not created\n`);
  });

  test('a failure vmfile expects is said as the full command says it, with its exit code', async () => {
    const err = capture(process.stderr);
    expect(await quickStatus([], await tempDir())).toBe(78);
    expect(err.join('')).toMatch(/^error: no Vmfile\.ts in .+ or any parent directory\nhint: /);
  });
});

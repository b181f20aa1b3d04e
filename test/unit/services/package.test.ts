import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { UserError } from '../../../src/errors.js';
import { loadProject } from '../../../src/project/load.js';
import { packageMachine } from '../../../src/services/package.js';
import { quiet } from '../quiet-reporter.js';
import { tempDir } from '../temp-dir.js';

describe('vmfile package', () => {
  test('a machine never created is a UserError saying so (exit 1), not ENOENT on its lock file', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'Vmfile.ts'), "export default { box: 'debian-12' };\n");
    const project = await loadProject({ cwd: dir });

    const error = await packageMachine({ project, output: join(dir, 'out.box') }, { home: await tempDir(), reporter: quiet, env: {} }).catch((reason: unknown) => reason);

    expect(error).toBeInstanceOf(UserError);
    expect((error as UserError).exitCode).toBe(1);
    expect((error as UserError).message).toMatch(/^machine "default" is not created/);
  });
});

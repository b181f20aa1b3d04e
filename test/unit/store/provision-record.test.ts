import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { ConfigError } from '../../../src/errors.js';
import { markDone, readRecord } from '../../../src/store/provision-record.js';
import { tempDir } from '../temp-dir.js';

describe('provisioning record', () => {
  test('missing means nothing ran yet; a written record reads back', async () => {
    const path = join(await tempDir(), 'provisioned.json');
    const record = await readRecord(path);
    expect(record).toEqual({ steps: {} });
    await markDone(path, record, 'deps', 'h1');
    expect(Object.keys((await readRecord(path)).steps)).toEqual(['deps']);
  });

  test.each([
    ['not JSON', '{"steps": {'],
    ['of the wrong shape', JSON.stringify({ steps: { deps: 'yes' } })],
  ])('a damaged record (%s) is a configuration error naming the file, never "nothing ran"', async (_what, text) => {
    const path = join(await tempDir(), 'provisioned.json');
    await writeFile(path, text);
    const error = await readRecord(path).catch((reason: unknown) => reason);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).exitCode).toBe(78);
    expect((error as ConfigError).message).toContain(`provisioning record ${path} is damaged`);
    expect((error as ConfigError).hint).toContain('delete it');
  });
});

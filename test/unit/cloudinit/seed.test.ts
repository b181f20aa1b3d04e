import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { loadSeedTemplates, renderSeed, writeSeed, type SeedData, type SeedTemplates } from '../../../src/cloudinit/seed.js';
import { tempDir } from '../temp-dir.js';

const HOST_PRIVATE_KEY = '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\nAAAEbm9uZQ==\n-----END OPENSSH PRIVATE KEY-----\n';

const DATA: SeedData = {
  machine: 'web',
  instanceId: 'iid-1234',
  hostname: 'web-1',
  user: 'vm',
  authorizedKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA vmfile@host',
  hostPrivateKey: HOST_PRIVATE_KEY,
  hostPublicKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB vmfile-web',
};

let templates: SeedTemplates;

beforeAll(async () => {
  templates = await loadSeedTemplates();
});

/** The value of a top-level or nested `key: value` line, JSON-decoded (the templates JSON-quote values). */
function jsonValue(text: string, key: string): unknown {
  const lines = text.split('\n').filter((line) => line.trimStart().startsWith(`${key}: `));
  expect(lines, `exactly one "${key}:" line`).toHaveLength(1);
  const line = lines[0] ?? '';
  return JSON.parse(line.slice(line.indexOf(': ') + 2));
}

describe('renderSeed', () => {
  test('user-data is a #cloud-config document with every value in place', () => {
    const userData = renderSeed(templates, DATA)['user-data'];
    expect(userData.split('\n')[0]).toBe('#cloud-config');
    expect(jsonValue(userData, 'hostname')).toBe('web-1');
    expect(jsonValue(userData, '- name')).toBe('vm');
    expect(jsonValue(userData, 'ed25519_private')).toBe(HOST_PRIVATE_KEY);
    expect(jsonValue(userData, 'ed25519_public')).toBe(DATA.hostPublicKey);
    expect(userData).toContain(`      - ${JSON.stringify(DATA.authorizedKey)}\n`);
  });

  test('meta-data names the instance and the host', () => {
    expect(renderSeed(templates, DATA)['meta-data']).toBe('instance-id: "iid-1234"\nlocal-hostname: "web-1"\n');
  });

  test("the private host key's newlines are escaped, so it stays on one line", () => {
    const userData = renderSeed(templates, DATA)['user-data'];
    expect(userData).toContain('  ed25519_private: "-----BEGIN OPENSSH PRIVATE KEY-----\\nb3BlbnNzaC1rZXktdjEAAAAA\\nAAAEbm9uZQ==\\n-----END OPENSSH PRIVATE KEY-----\\n"\n');
    expect(userData).not.toContain('\nb3BlbnNzaC1rZXktdjEAAAAA');
  });

  test.each([
    ['a quote', 'x" injected: "y'],
    ['a newline', 'x\nruncmd: [reboot]'],
    ['a YAML comment', 'x # y'],
    ['YAML flow characters', '{a: [b]}'],
    ['a backslash', 'C:\\x'],
  ])('a value with %s stays one quoted scalar on its own line', (_label, hostile) => {
    const rendered = renderSeed(templates, { ...DATA, hostname: hostile, authorizedKey: hostile });
    const userData = rendered['user-data'];
    const baseline = renderSeed(templates, DATA)['user-data'];
    expect(userData.split('\n')).toHaveLength(baseline.split('\n').length);
    expect(userData).not.toMatch(/^runcmd:/m);
    expect(jsonValue(userData, 'hostname')).toBe(hostile);
    expect(jsonValue(rendered['meta-data'], 'local-hostname')).toBe(hostile);
    expect(userData).toContain(`      - ${JSON.stringify(hostile)}\n`);
  });

  test('nothing is HTML-escaped', () => {
    const userData = renderSeed(templates, { ...DATA, authorizedKey: 'ssh-ed25519 AAAA a&b<c>' })['user-data'];
    expect(userData).toContain('"ssh-ed25519 AAAA a&b<c>"');
  });

  test('a template referring to a field outside the data fails in strict mode', () => {
    expect(() => renderSeed({ ...templates, files: { ...templates.files, 'meta-data': 'instance-id: {{instanceId}}\nzone: {{zone}}\n' } }, DATA)).toThrow(/"zone" not defined/);
  });

  // Every value goes through the `json` helper, which Handlebars' strict mode does not
  // check, so the helper refuses a missing value itself.
  test('a missing field fails instead of rendering "undefined"', () => {
    const { user: _user, ...withoutUser } = DATA;
    expect(() => renderSeed(templates, withoutUser as SeedData)).toThrow();
  });
});

describe('writeSeed', () => {
  test('writes meta-data and user-data as 0600 files in a 0700 directory', async () => {
    const seedDir = join(await tempDir(), 'machine', 'seed');
    const files = renderSeed(await loadSeedTemplates(), DATA);

    await writeSeed(seedDir, files);

    expect((await readdir(seedDir)).sort()).toEqual(['meta-data', 'user-data']);
    expect((await stat(seedDir)).mode & 0o777).toBe(0o700);
    for (const name of ['meta-data', 'user-data'] as const) {
      expect((await stat(join(seedDir, name))).mode & 0o777).toBe(0o600);
      expect(await readFile(join(seedDir, name), 'utf8')).toBe(files[name]);
    }
  });

  test('replaces an earlier seed entirely, stale files included', async () => {
    const seedDir = join(await tempDir(), 'seed');
    await writeSeed(seedDir, { 'meta-data': 'old', 'user-data': 'old' });
    await writeFile(join(seedDir, 'network-config'), 'stale');

    await writeSeed(seedDir, { 'meta-data': 'new meta', 'user-data': 'new user' });

    expect((await readdir(seedDir)).sort()).toEqual(['meta-data', 'user-data']);
    expect(await readFile(join(seedDir, 'user-data'), 'utf8')).toBe('new user');
  });
});

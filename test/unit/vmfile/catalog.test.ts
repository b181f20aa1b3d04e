import { describe, expect, test } from 'vitest';
import { UserError } from '../../../src/errors.js';
import { chooseFromCatalog, parseCatalog, type Catalog } from '../../../src/vmfile/catalog.js';
import { parseVersionConstraints } from '../../../src/vmfile/version.js';

const WHERE = 'box org/name: catalog http://127.0.0.1/catalog.json';
const SHA256 = 'ab'.repeat(32);
const SHA512 = 'cd'.repeat(64);

interface Provider {
  name: string;
  url: string;
  checksum?: string | null;
  checksum_type?: string | null | undefined;
  architecture?: string;
  default_architecture?: boolean;
}

function provider(name: string, version: string, extra: Partial<Provider> = {}): Provider {
  return { name, url: `https://boxes.example/org/name/${version}/${name}.box`, checksum: SHA256, checksum_type: 'sha256', ...extra };
}

function catalog(versions: { version: string; providers: Provider[] }[], name = 'org/name'): Catalog {
  return parseCatalog(JSON.stringify({ name, versions }), WHERE);
}

function failure(fn: () => unknown): UserError {
  try {
    fn();
  } catch (error) {
    if (error instanceof UserError) return error;
    throw error;
  }
  throw new Error('expected a UserError');
}

describe('chooseFromCatalog', () => {
  const three = catalog([
    { version: '1.9', providers: [provider('libvirt', '1.9')] },
    { version: '1.10', providers: [provider('libvirt', '1.10')] },
    { version: '2.0', providers: [provider('virtualbox', '2.0')] },
  ]);

  test('the newest version with a box vmfile can run (2.0 has only VirtualBox)', () => {
    expect(chooseFromCatalog(three, WHERE)).toEqual({
      version: '1.10',
      provider: 'libvirt',
      url: 'https://boxes.example/org/name/1.10/libvirt.box',
      checksum: { algorithm: 'sha256', hex: SHA256 },
      field: 'versions[1].providers[0]',
    });
  });

  test.each([
    ['= 1.9', '1.9'],
    ['>= 1.9', '1.10'],
    ['< 1.10', '1.9'],
    ['~> 1.0', '1.10'],
  ])('constraints %j pick %s', (text, version) => {
    expect(chooseFromCatalog(three, WHERE, parseVersionConstraints(text)).version).toBe(version);
  });

  test('an exact version is that string: --version 1.2 is not 1.02', () => {
    const zeros = catalog([
      { version: '1.02', providers: [provider('libvirt', '1.02')] },
      { version: '1.1', providers: [provider('libvirt', '1.1')] },
    ]);
    expect(failure(() => chooseFromCatalog(zeros, WHERE, parseVersionConstraints('1.2'))).message).toBe(`${WHERE} has no version meeting = 1.2 (it lists 1.1, 1.02)`);
    expect(chooseFromCatalog(zeros, WHERE, parseVersionConstraints('1.02')).version).toBe('1.02');
  });

  test('a pre-release is older than its release: the newest is 2.0, not 2.0-rc1', () => {
    const pre = catalog(['2.0-rc1', '2.0', '1.9', '2.0.beta'].map((version) => ({ version, providers: [provider('libvirt', version)] })));
    expect(chooseFromCatalog(pre, WHERE).version).toBe('2.0');
    expect(chooseFromCatalog(pre, WHERE, parseVersionConstraints('< 2.0')).version).toBe('2.0-rc1');
  });

  test('no version meets the constraints: the message lists what the catalog has', () => {
    const error = failure(() => chooseFromCatalog(three, WHERE, parseVersionConstraints('>= 3')));
    expect(error.message).toBe(`${WHERE} has no version meeting >= 3 (it lists 1.9, 1.10, 2.0)`);
  });

  test('only providers of other kinds: says what is offered', () => {
    const error = failure(() => chooseFromCatalog(catalog([{ version: '1', providers: [provider('virtualbox', '1'), provider('libvirt', '1', { architecture: 'arm64' })] }]), WHERE));
    expect(error.message).toBe(`${WHERE}: no version has a vmfile or libvirt box for x86_64 (offered: libvirt (arm64), virtualbox)`);
  });

  test.each<[string, Provider[], string]>([
    ['vmfile before libvirt', [provider('libvirt', '1'), provider('vmfile', '1')], 'vmfile'],
    ['amd64 before no architecture', [provider('libvirt', '1'), provider('libvirt', '1', { architecture: 'amd64', url: 'https://boxes.example/amd64.box' })], 'https://boxes.example/amd64.box'],
    ['x86_64 counts as amd64', [provider('libvirt', '1', { architecture: 'arm64' }), provider('libvirt', '1', { architecture: 'x86_64', url: 'https://boxes.example/x86.box' })], 'https://boxes.example/x86.box'],
    ['"unknown" only as the default architecture', [provider('libvirt', '1', { architecture: 'unknown', default_architecture: true, url: 'https://boxes.example/any.box' })], 'https://boxes.example/any.box'],
    ['this host\'s architecture before a preferred provider of no architecture', [provider('vmfile', '1'), provider('libvirt', '1', { architecture: 'amd64' })], 'libvirt'],
  ])('providers: %s', (_label, providers, expected) => {
    const choice = chooseFromCatalog(catalog([{ version: '1', providers }]), WHERE);
    expect([choice.provider, choice.url]).toContain(expected);
  });

  test('"unknown" architecture that is not the default is not chosen', () => {
    expect(() => chooseFromCatalog(catalog([{ version: '1', providers: [provider('libvirt', '1', { architecture: 'unknown' })] }]), WHERE)).toThrow(/no version has a vmfile or libvirt box/);
  });

  test.each<[string, Partial<Provider>, string | { algorithm: string; hex: string }]>([
    ['sha256', {}, { algorithm: 'sha256', hex: SHA256 }],
    ['sha512 is verified too', { checksum: SHA512, checksum_type: 'sha512' }, { algorithm: 'sha512', hex: SHA512 }],
    ['type and digits in upper case', { checksum: SHA256.toUpperCase(), checksum_type: 'SHA256' }, { algorithm: 'sha256', hex: SHA256 }],
    ['md5 is refused', { checksum: 'ab'.repeat(16), checksum_type: 'md5' }, `${WHERE}: versions[0].providers[0].checksum_type: "md5" is not supported (vmfile verifies sha256, sha384, sha512)`],
    ['sha1 is refused', { checksum: 'ab'.repeat(20), checksum_type: 'sha1' }, `${WHERE}: versions[0].providers[0].checksum_type: "sha1" is not supported (vmfile verifies sha256, sha384, sha512)`],
    ['no checksum', { checksum: null, checksum_type: null }, `${WHERE}: versions[0].providers[0]: no checksum and checksum_type, and vmfile does not install a box it cannot verify`],
    ['a checksum without its type', { checksum_type: undefined }, `${WHERE}: versions[0].providers[0]: no checksum and checksum_type, and vmfile does not install a box it cannot verify`],
    ['a sha256 of the wrong length', { checksum: SHA512 }, `${WHERE}: versions[0].providers[0].checksum: expected 64 hex digits for sha256`],
    ['a checksum that is not hex', { checksum: 'zz'.repeat(32) }, `${WHERE}: versions[0].providers[0].checksum: expected 64 hex digits for sha256`],
  ])('checksums: %s', (_label, extra, expected) => {
    const parsed = catalog([{ version: '1', providers: [provider('libvirt', '1', extra)] }]);
    if (typeof expected === 'string') expect(failure(() => chooseFromCatalog(parsed, WHERE)).message).toBe(expected);
    else expect(chooseFromCatalog(parsed, WHERE).checksum).toEqual(expected);
  });
});

describe('parseCatalog', () => {
  test('a real-world catalog with fields vmfile does not use parses', () => {
    const text = JSON.stringify({
      name: 'generic/debian12',
      description: null,
      short_description: 'Debian 12',
      versions: [
        {
          version: '4.3.12',
          status: 'active',
          description_html: null,
          providers: [{ name: 'libvirt', url: 'https://vagrantcloud.com/generic/boxes/debian12/versions/4.3.12/providers/libvirt/amd64/vagrant.box', checksum: SHA256, checksum_type: 'sha256', architecture: 'amd64', default_architecture: true, original_url: 'x' }],
        },
      ],
    });
    expect(parseCatalog(text, WHERE).versions[0]?.providers[0]?.architecture).toBe('amd64');
  });

  const hostile: [string, unknown, string[]][] = [
    ['a list, not an object', [], ['(top level): Invalid input: expected object, received array']],
    ['no versions', { name: 'org/name' }, ['versions: Invalid input: expected array, received undefined']],
    ['a name that would leave the store', { name: '../../etc', versions: [] }, ['name: box names are letters, digits, ".", "_" and "-", starting with a letter or digit, optionally as "org/name", without the word VAGRANTSLASH']],
    ['a version that would leave the store', { name: 'a', versions: [{ version: '../1', providers: [] }] }, ['versions[0].version: a version is letters, digits, ".", "_", "+" and "-", at most 64 characters']],
    ['a version given as a number', { name: 'a', versions: [{ version: 1, providers: [] }] }, ['versions[0].version: Invalid input: expected string, received number']],
    ['a file:// download', { name: 'a', versions: [{ version: '1', providers: [{ name: 'libvirt', url: 'file:///etc/shadow' }] }] }, ['versions[0].providers[0].url: expected an http:// or https:// URL, not file:']],
    [
      'a URL with a newline (forged log lines)',
      { name: 'a', versions: [{ version: '1', providers: [{ name: 'libvirt', url: 'http://x/a\nerror: fake' }] }] },
      ['versions[0].providers[0].url: expected a URL without spaces or control characters (percent-encode them)'],
    ],
    ['a URL of 3000 characters', { name: 'a', versions: [{ version: '1', providers: [{ name: 'libvirt', url: `http://x/${'a'.repeat(3000)}` }] }] }, ['versions[0].providers[0].url: expected a URL of at most 2048 characters, not 3009']],
    [
      'the same version twice',
      { name: 'a', versions: [{ version: '1', providers: [] }, { version: '1', providers: [] }] },
      ['versions[1].version: version 1 is listed twice'],
    ],
    ['a description of a megabyte', { name: 'a', description: 'x'.repeat(1024 * 1024), versions: [] }, ['description: expected at most 65536 characters']],
    ['too many versions', { name: 'a', versions: Array.from({ length: 10_001 }, (_, i) => ({ version: String(i), providers: [] })) }, ['versions: at most 10000 versions']],
  ];

  test.each(hostile)('refused: %s', (_label, value, lines) => {
    const error = failure(() => parseCatalog(JSON.stringify(value), WHERE));
    expect(error.message).toBe(`${WHERE} is invalid:\n${lines.map((line) => `  - ${line}`).join('\n')}`);
  });

  test('not JSON at all', () => {
    expect(failure(() => parseCatalog('<html>Not Found</html>', WHERE)).message).toMatch(/^box org\/name: catalog http:\/\/127\.0\.0\.1\/catalog\.json is not JSON \(/);
  });

  test('a catalog with a problem in every entry lists ten and counts the rest', () => {
    const versions = Array.from({ length: 50 }, (_, i) => ({ version: `../${i}`, providers: [] }));
    const lines = failure(() => parseCatalog(JSON.stringify({ name: 'a', versions }), WHERE)).message.split('\n');
    expect(lines).toHaveLength(12);
    expect(lines.at(-1)).toBe('  - and 40 more');
  });

  test('a __proto__ key is data, not a prototype', () => {
    const parsed = parseCatalog('{"name":"a","versions":[],"__proto__":{"polluted":true}}', WHERE);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    expect(parsed.versions).toEqual([]);
  });
});

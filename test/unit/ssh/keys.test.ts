import { describe, expect, test } from 'vitest';
import { hostKeyAlias, knownHostsLine, publicKeyBlob } from '../../../src/ssh/keys.js';

// A real ed25519 public key blob: string "ssh-ed25519" then 32 key bytes, each length-prefixed.
const BLOB = Buffer.concat([
  Buffer.from([0, 0, 0, 11]),
  Buffer.from('ssh-ed25519'),
  Buffer.from([0, 0, 0, 32]),
  Buffer.alloc(32, 7),
]);
const BLOB64 = BLOB.toString('base64');

describe('publicKeyBlob', () => {
  test.each([
    ['with a comment', `ssh-ed25519 ${BLOB64} vmfile@host`],
    ['without a comment', `ssh-ed25519 ${BLOB64}`],
    ['with surrounding whitespace and a newline', `  ssh-ed25519\t${BLOB64}   a comment with spaces\n`],
  ])('decodes the base64 field of a key %s', (_label, line) => {
    expect(publicKeyBlob(line).equals(BLOB)).toBe(true);
  });

  test.each([[''], ['ssh-ed25519'], ['   ']])('%j is not a public key', (line) => {
    expect(() => publicKeyBlob(line)).toThrow(`not an OpenSSH public key: ${line}`);
  });

  test('the error shows at most 40 characters of the line', () => {
    const line = 'x'.repeat(100);
    expect(() => publicKeyBlob(line)).toThrow(new Error(`not an OpenSSH public key: ${'x'.repeat(40)}`));
  });
});

describe('knownHostsLine', () => {
  test.each([
    ['vmfile-web', `ssh-ed25519 ${BLOB64} root@web`, `vmfile-web ssh-ed25519 ${BLOB64}\n`],
    ['vmfile-db', `ssh-ed25519 ${BLOB64}\n`, `vmfile-db ssh-ed25519 ${BLOB64}\n`],
    ['vmfile-x', `  ecdsa-sha2-nistp256   AAAAE2 comment  `, 'vmfile-x ecdsa-sha2-nistp256 AAAAE2\n'],
  ])('alias %s pins %j without its comment', (alias, key, line) => {
    expect(knownHostsLine(alias, key)).toBe(line);
  });
});

describe('hostKeyAlias', () => {
  test.each([
    ['default', 'vmfile-default'],
    ['web', 'vmfile-web'],
  ])('%s -> %s', (machine, alias) => {
    expect(hostKeyAlias(machine)).toBe(alias);
  });

  test('is what knownHostsLine is keyed by', () => {
    expect(knownHostsLine(hostKeyAlias('web'), `ssh-ed25519 ${BLOB64}`).split(' ')[0]).toBe('vmfile-web');
  });
});

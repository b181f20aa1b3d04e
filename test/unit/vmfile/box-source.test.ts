import { describe, expect, test } from 'vitest';
import { checkHttpUrl, formatChecksum, hasRedactedCredentials, parseChecksum, redactUrl } from '../../../src/vmfile/box-source.js';

describe('checkHttpUrl', () => {
  test.each(['http://127.0.0.1:8080/box.qcow2', 'https://boxes.example/org/name.json?token=abc%20def', 'HTTPS://BOXES.EXAMPLE/x'])('%s is a URL vmfile downloads from', (url) => {
    expect(checkHttpUrl(url)).toBeUndefined();
  });

  test.each([
    ['ftp://x/box', 'an http:// or https:// URL, not ftp:'],
    ['file:///etc/passwd', 'an http:// or https:// URL, not file:'],
    ['javascript:alert(1)', 'an http:// or https:// URL, not javascript:'],
    ['/boxes/x.box', 'an absolute http:// or https:// URL'],
    ['http://x/a b', 'a URL without spaces or control characters (percent-encode them)'],
    ['http://x/\u001b[31mred', 'a URL without spaces or control characters (percent-encode them)'],
    ['http://x/ä', 'a URL without spaces or control characters (percent-encode them)'],
    [`http://x/${'a'.repeat(2048)}`, 'a URL of at most 2048 characters, not 2057'],
  ])('%j is refused: expected %s', (url, problem) => {
    expect(checkHttpUrl(url)).toBe(problem);
  });
});

describe('checksums', () => {
  test.each([
    [`sha256:${'AB'.repeat(32)}`, { algorithm: 'sha256', hex: 'ab'.repeat(32) }],
    [`sha384:${'ab'.repeat(48)}`, { algorithm: 'sha384', hex: 'ab'.repeat(48) }],
    [`sha512:${'ab'.repeat(64)}`, { algorithm: 'sha512', hex: 'ab'.repeat(64) }],
  ])('%s', (text, checksum) => {
    expect(parseChecksum(text)).toEqual(checksum);
    expect(formatChecksum(parseChecksum(text) ?? { algorithm: 'sha256', hex: '' })).toBe(text.toLowerCase());
  });

  test.each([`md5:${'ab'.repeat(16)}`, `sha1:${'ab'.repeat(20)}`, `sha256:${'ab'.repeat(64)}`, `sha512:${'ab'.repeat(32)}`, 'ab'.repeat(32), 'sha256:'])('%s is not a checksum vmfile verifies', (text) => {
    expect(parseChecksum(text)).toBeUndefined();
  });
});

describe('redactUrl', () => {
  test.each([
    ['https://user:token@boxes.example/a.box', 'https://***@boxes.example/a.box'],
    ['HTTPS://token@boxes.example:8443/a.json?x=1@2', 'HTTPS://***@boxes.example:8443/a.json?x=1@2'],
    ['http://a@b@boxes.example/p', 'http://***@boxes.example/p'],
    ['ftp://user:pass@host/x', 'ftp://***@host/x'],
    // No credentials: exactly as written.
    ['https://boxes.example/a@b.box', 'https://boxes.example/a@b.box'],
    ['http://boxes.example\\x@y/p', 'http://boxes.example\\x@y/p'],
    ['not a url user:pass@x', 'not a url user:pass@x'],
  ])('%s -> %s', (text, shown) => {
    expect(redactUrl(text)).toBe(shown);
    expect(hasRedactedCredentials(redactUrl(text))).toBe(shown.includes('***@'));
  });

  test('what the URL parser takes for credentials is always redacted', () => {
    for (const text of ['https://u:p@h/', 'https://u:p@h', 'http://u:p@h?q', 'http://u:p@h#f', 'http://:p@h/', 'http://u:@h/']) {
      const url = new URL(redactUrl(text));
      expect([url.username, url.password], text).toEqual(['***', '']);
    }
  });
});

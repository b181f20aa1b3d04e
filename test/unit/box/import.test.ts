import { describe, expect, test } from 'vitest';
import { UserError } from '../../../src/errors.js';
import { sniffImage, type ImageKind } from '../../../src/box/box-file.js';
import { parseChecksum, todayVersion } from '../../../src/box/import.js';

/** A 512-byte header block with `bytes` at `offset`. */
function head(bytes: readonly number[] | string, offset = 0, length = 512): Buffer {
  const buffer = Buffer.alloc(length);
  (typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : Buffer.from(bytes)).copy(buffer, offset);
  return buffer;
}

describe('sniffImage', () => {
  test.each<[string, Buffer, ImageKind]>([
    ['qcow2 magic', head([0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 3]), 'qcow2'],
    ['qcow2 magic in a short read', Buffer.from([0x51, 0x46, 0x49, 0xfb]), 'qcow2'],
    ['ustar at 257 (POSIX tar)', head('ustar\u000000', 257), 'tar'],
    ['ustar at 257 (GNU tar)', head('ustar  \u0000', 257), 'tar'],
    ['ustar elsewhere', head('ustar', 256), 'unknown'],
    ['a tar header cut short before the magic ends', head('ustar', 257, 261), 'unknown'],
    ['gzip', head([0x1f, 0x8b, 0x08]), 'gzip'],
    ['bzip2', head('BZh91AY&SY'), 'bzip2'],
    ['xz', head([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), 'xz'],
    ['xz magic without its final zero byte', head([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x01]), 'unknown'],
    ['zstd', head([0x28, 0xb5, 0x2f, 0xfd]), 'zstd'],
    ['zeros (a raw disk)', head([]), 'unknown'],
    ['an empty file', Buffer.alloc(0), 'unknown'],
    ['a one-byte file', Buffer.from([0x1f]), 'unknown'],
    ['text', head('#!/bin/sh\n'), 'unknown'],
  ])('%s -> %s', (_label, bytes, kind) => {
    expect(sniffImage(bytes)).toBe(kind);
  });
});

const HEX = '0123456789abcdef'.repeat(4);

describe('parseChecksum', () => {
  test.each([
    [`sha256:${HEX}`, HEX],
    [`sha256:${HEX.toUpperCase()}`, HEX],
    [`  sha256:${HEX}\n`, HEX],
  ])('%j -> the lower-case hex digest', (text, hex) => {
    expect(parseChecksum(text)).toBe(hex);
  });

  test.each([
    [HEX],
    [`md5:${HEX}`],
    [`sha512:${HEX}`],
    [`SHA256:${HEX}`],
    [`sha256:${HEX.slice(1)}`],
    [`sha256:${HEX}0`],
    [`sha256:${HEX.slice(1)}g`],
    ['sha256:'],
    [''],
  ])('%j is refused', (text) => {
    expect(() => parseChecksum(text)).toThrow(UserError);
    expect(() => parseChecksum(text)).toThrow(`--checksum ${JSON.stringify(text)} is not of the form sha256:<64 hex digits>`);
  });
});

describe('todayVersion', () => {
  test.each([
    ['2026-11-02T12:00:00Z', '2026.11.2'],
    ['2026-01-31T23:59:59Z', '2026.1.31'],
    // UTC, whatever the local time zone says.
    ['2026-12-31T23:30:00-05:00', '2027.1.1'],
  ])('%s -> %s', (iso, version) => {
    expect(todayVersion(new Date(iso))).toBe(version);
  });
});

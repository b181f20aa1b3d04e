import { describe, expect, test } from 'vitest';
import { formatSize, parseSize } from '../../../src/vmfile/size.js';

const KiB = 1024;
const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
const TiB = 1024 ** 4;

describe('parseSize', () => {
  test.each([
    ['512', 512],
    ['512B', 512],
    ['0', 0],
    ['1K', KiB],
    ['1KiB', KiB],
    ['512MiB', 512 * MiB],
    ['512M', 512 * MiB],
    ['2GiB', 2 * GiB],
    ['2gib', 2 * GiB],
    ['2g', 2 * GiB],
    ['1T', TiB],
    ['4TiB', 4 * TiB],
    ['1.5GiB', 1.5 * GiB],
    ['0.5KiB', 512],
    [' 2 GiB ', 2 * GiB],
  ])('%j is %d bytes', (text, bytes) => {
    expect(parseSize(text)).toBe(bytes);
  });

  test.each([
    [''],
    ['GiB'],
    ['-1GiB'],
    ['1e3'],
    ['2 GB'],
    ['2KB'],
    ['2PiB'],
    ['two GiB'],
    ['1,5GiB'],
    ['.5GiB'],
    ['2GiB extra'],
  ])('%j is not a size', (text) => {
    expect(parseSize(text)).toBeUndefined();
  });

  test('a size beyond exact integers is Infinity, so range checks call it too large', () => {
    expect(parseSize('9999TiB')).toBe(Number.POSITIVE_INFINITY);
  });
});

describe('formatSize', () => {
  test.each([
    [0, '0B'],
    [1, '1B'],
    [1023, '1023B'],
    [KiB, '1KiB'],
    [1536, '1.5KiB'],
    [128 * MiB, '128MiB'],
    [GiB, '1GiB'],
    [1.25 * GiB, '1.3GiB'],
    [10 * GiB, '10GiB'],
    [64 * TiB, '64TiB'],
    [2000 * TiB, '2000TiB'],
  ])('%d bytes is %s', (bytes, text) => {
    expect(formatSize(bytes)).toBe(text);
  });

  test.each(['1KiB', '128MiB', '2GiB', '10GiB', '4TiB'])('%s survives parse then format', (text) => {
    const bytes = parseSize(text);
    expect(bytes).toBeDefined();
    expect(formatSize(bytes ?? -1)).toBe(text);
  });
});

import { describe, expect, test } from 'vitest';
import { inUseInodes, isExtSuperblock, parseListing } from '../../../src/box/debugfs.js';

describe('parseListing', () => {
  test('reads `ls -p` lines, skipping . and .. and deleted entries', () => {
    const text = [
      '/405/040755/0/0/.//',
      '/33/040755/0/0/..//',
      '/406/100644/0/0/moduli/573928/',
      '/408/040755/0/0/ssh_config.d//',
      '/0/000000/0/0/gone//',
      '/500/120777/0/0/a/b/7/',
      'debugfs 1.47.0 (5-Feb-2023)',
    ].join('\n');
    expect(parseListing(text)).toEqual([
      { name: 'moduli', inode: 406, mode: 0o100644, size: 573928 },
      { name: 'ssh_config.d', inode: 408, mode: 0o40755, size: 0 },
      { name: 'a/b', inode: 500, mode: 0o120777, size: 7 },
    ]);
  });
});

describe('inUseInodes', () => {
  test.each([
    ['free ranges and single inodes', 'Inodes per group: 16\nGroup 0: (Blocks 0-1)\n  Free inodes: 14-16\nGroup 1: (Blocks 2-3)\n  Free inodes: 17, 20-32\n', [2, 11, 12, 13, 18, 19]],
    ['a full group lists no free inodes', 'Inodes per group: 12\nGroup 0: (Blocks 0-1)\n  Free inodes: \n', [2, 11, 12]],
  ])('%s', (_label, text, inodes) => {
    expect(inUseInodes(text)).toEqual(inodes);
  });
});

describe('isExtSuperblock', () => {
  const head = (bytes: [number, number]) => {
    const buffer = Buffer.alloc(2048);
    buffer[1080] = bytes[0];
    buffer[1081] = bytes[1];
    return buffer;
  };
  test.each<[string, Buffer, boolean]>([
    ['ext4 magic', head([0x53, 0xef]), true],
    ['byte-swapped', head([0xef, 0x53]), false],
    ['a partition table (MBR) and no file system at the start', head([0, 0]), false],
    ['too short to hold a superblock', Buffer.alloc(1000), false],
  ])('%s -> %s', (_label, bytes, expected) => {
    expect(isExtSuperblock(bytes)).toBe(expected);
  });
});

import { describe, expect, test } from 'vitest';
import { currentRsyncFolders, worthSyncing } from '../../../src/services/rsync.js';
import { parseVmfile } from '../../../src/vmfile/config.js';

describe('rsync --watch', () => {
  test.each([
    ['src/app.ts', true],
    ['README.md', true],
    [null, true],
    ['.vmfile/machines/default/serial.log', false],
    ['sub/.vmfile/key', false],
    ['.git/index', false],
    ['.github/workflow.yml', true],
    ['my.vmfile.txt', true],
  ])('a change to %s is worth a sync: %s', (path, expected) => {
    expect(worthSyncing(path)).toBe(expected);
  });
});

describe('vmfile rsync takes what to leave out from the Vmfile as it is now', () => {
  test('exclude and gitignore follow the Vmfile; live folders and folders no longer declared are left as booted', () => {
    const booted = [
      { host: '/p', guest: '/vmfile', readonly: false, type: 'rsync' as const, tag: 'vmfile0', gitignore: true },
      { host: '/p/data', guest: '/data', readonly: false, type: 'rsync' as const, tag: 'vmfile1', exclude: ['*.tmp'] },
      { host: '/p/live', guest: '/live', readonly: false, type: '9p' as const, tag: 'vmfile2' },
    ];
    const machine = parseVmfile({ box: 'd', folders: [{ host: '.', guest: '/vmfile', type: 'rsync', gitignore: false, exclude: ['*.log'] }, { host: 'live', guest: '/live', type: '9p' }] }, '/p/Vmfile.ts', '/p').machines[0];
    if (machine === undefined) throw new Error('no machine');
    expect(currentRsyncFolders(booted, machine)).toEqual([
      { host: '/p', guest: '/vmfile', readonly: false, type: 'rsync', tag: 'vmfile0', gitignore: false, exclude: ['*.log'] },
      { host: '/p/data', guest: '/data', readonly: false, type: 'rsync', tag: 'vmfile1', exclude: ['*.tmp'] },
    ]);
  });
});

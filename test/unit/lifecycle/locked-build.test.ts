import { describe, expect, test } from 'vitest';
import { ConfigError } from '../../../src/errors.js';
import { lockedBuild, snapshotMirrorFromEnv } from '../../../src/lifecycle/box.js';
import type { LockEntry } from '../../../src/vmfile/lock.js';

const A = 'a'.repeat(64);
const deb = { name: 'bash', version: '5.2', architecture: 'amd64', priority: 'required' as const, sha256: 'b'.repeat(64) };
const entry: LockEntry = {
  box: 'debian-12',
  version: '2026.12.7',
  sha256: A,
  kernelSha256: 'c'.repeat(64),
  initrdSha256: 'd'.repeat(64),
  source: 'recipe',
  recipe: { name: 'debian-12', hash: 'e'.repeat(64), suite: 'bookworm', sourceDateEpoch: 1_700_000_000, built: '2026-12-07T12:38:26.737Z', packages: [deb] },
};

describe('what a lock entry pins for a rebuild', () => {
  test('the packages, the digests to match, the recipe and the build time (for the snapshot mirror)', () => {
    expect(lockedBuild(entry, 'http://snap.example')).toEqual({
      packages: [deb],
      sha256: A,
      kernelSha256: 'c'.repeat(64),
      initrdSha256: 'd'.repeat(64),
      recipeHash: 'e'.repeat(64),
      built: '2026-12-07T12:38:26.737Z',
      snapshotMirror: 'http://snap.example',
    });
  });

  test('nothing for a lock written before packages were recorded, or a box not built from a recipe', () => {
    const { packages: _dropped, ...recipe } = entry.recipe ?? expect.fail('recipe');
    expect(lockedBuild({ ...entry, recipe }, undefined)).toBeUndefined();
    const { recipe: _none, ...imported } = entry;
    expect(lockedBuild({ ...imported, source: 'import' }, undefined)).toBeUndefined();
    expect(lockedBuild(undefined, undefined)).toBeUndefined();
  });

  test('VMFILE_SNAPSHOT_MIRROR must be an http(s) URL, and says so by name', () => {
    expect(snapshotMirrorFromEnv({})).toBeUndefined();
    expect(snapshotMirrorFromEnv({ VMFILE_SNAPSHOT_MIRROR: '' })).toBeUndefined();
    expect(snapshotMirrorFromEnv({ VMFILE_SNAPSHOT_MIRROR: 'http://127.0.0.1:8080' })).toBe('http://127.0.0.1:8080');
    expect(() => snapshotMirrorFromEnv({ VMFILE_SNAPSHOT_MIRROR: 'file:///etc' })).toThrow(ConfigError);
    expect(() => snapshotMirrorFromEnv({ VMFILE_SNAPSHOT_MIRROR: 'file:///etc' })).toThrow(/^VMFILE_SNAPSHOT_MIRROR is "file:\/\/\/etc", which is not/);
  });
});

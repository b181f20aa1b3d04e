import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { listSnapshots, snapshotOffline } from '../../../src/qemu/img.js';
import { tempDir } from '../temp-dir.js';

describe('offline snapshots with the installed qemu-img', () => {
  test('create, list, apply and delete on a qcow2 image', async () => {
    const disk = join(await tempDir(), 'overlay.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', disk, '16M']);
    await snapshotOffline(disk, 'create', 'clean');
    expect((await listSnapshots(disk)).map((snapshot) => snapshot.name)).toEqual(['clean']);
    await snapshotOffline(disk, 'apply', 'clean');
    await snapshotOffline(disk, 'delete', 'clean');
    expect(await listSnapshots(disk)).toEqual([]);
  });
});

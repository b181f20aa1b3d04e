/**
 * Which requirements each kind of start meets, as a table: the one list serves a boot,
 * a resume, a first start from a warm state, a Vagrant box's first boot and the generic
 * machines of warm states and layers, and they differ only in which entries apply.
 */
import { describe, expect, test } from 'vitest';
import { requirements, type GuestStart } from '../../../src/guest/requirements.js';
import type { MachineRecord, MachineState } from '../../../src/store/machine.js';
import { parseVmfile } from '../../../src/vmfile/config.js';

const state: MachineState = { name: 'web', instanceId: 'vmfile-1', createdAt: '2026-12-01T00:00:00.000Z', box: { name: 'debian-12', version: '1', sha256: 'a'.repeat(64) }, user: 'vm' };

function start(overrides: Partial<Omit<GuestStart, 'record'>> & { record?: Partial<MachineState>; vmfile?: object }): GuestStart {
  const { record, vmfile, ...rest } = overrides;
  const project = parseVmfile({ box: 'debian-12', folders: [], ...vmfile }, '/p/Vmfile.ts', '/p');
  return {
    project,
    machine: project.machines[0] as GuestStart['machine'],
    paths: {} as GuestStart['paths'],
    driver: {} as GuestStart['driver'],
    reporter: {} as GuestStart['reporter'],
    home: '/h',
    record: { state: { ...state, ...record } } as MachineRecord,
    start: 'boot',
    warm: false,
    provision: 'boot',
    folders: [],
    pid: 1,
    sshPort: 2222,
    stepsRun: 0,
    ...rest,
  };
}

const applying = (c: GuestStart) => requirements.filter((requirement) => requirement.applies(c)).map((requirement) => requirement.name);
const rsync = [{ host: '/p', guest: '/vmfile', readonly: false, type: 'rsync' as const, tag: 'vmfile0' }];

describe('the requirements each start meets', () => {
  test.each([
    ['a first boot from the box', { record: { checkRoot: true as const } }, ['SSH answers', 'root file system fills the disk', 'first boot flushed to disk', 'provisioned']],
    ['a later boot, with an rsync folder', { record: { initialized: true }, folders: rsync }, ['SSH answers', 'folders synced', 'provisioned']],
    ['vmup --no-provision of a booted machine', { record: { initialized: true }, provision: 'none' as const }, ['SSH answers']],
    ['a resume (rsync folders copied again, live ones stay mounted)', { start: 'resume' as const, record: { initialized: true }, folders: rsync }, ['SSH answers', 'guest clock set from the host', 'folders synced', 'saved memory dropped']],
    ['a machine on the private network', { record: { initialized: true }, vmfile: { network: { ip: '10.20.0.11' } } }, ['SSH answers', 'private network joined', 'provisioned']],
    ['a first start from a warm state (the take-over sets the clock)', { warm: true, record: { login: 'warm-state' as const } }, ['SSH answers', 'became this machine', 'first boot flushed to disk', 'provisioned']],
    ["a Vagrant box's first boot", { record: { login: 'vagrant-insecure-key' as const, checkRoot: true as const } }, ['SSH answers', 'became this machine', 'root file system fills the disk', 'first boot flushed to disk', 'provisioned']],
    ["a warm state's generic machine", { generic: {}, record: { checkRoot: true as const }, provision: 'none' as const }, ['SSH answers', 'cloud-init finished', 'root file system fills the disk', 'first boot flushed to disk', 'boot ID located']],
    ["a layer's generic machine (from its parent's memory, one step)", { generic: {}, warm: true, record: { initialized: true }, provision: { kind: 'only' as const, names: ['apt'] } }, ['SSH answers', 'guest clock set from the host', 'provisioned']],
  ])('%s', (_what, overrides, expected) => {
    expect(applying(start(overrides))).toEqual(expected);
  });

  test('the take-over comes right after SSH answers, before anything else runs in the guest', () => {
    const names = requirements.map((requirement) => requirement.name);
    expect(names.indexOf('became this machine')).toBe(names.indexOf('SSH answers') + 1);
  });
});

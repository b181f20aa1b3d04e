import { describe, expect, test } from 'vitest';
import { driftOf } from '../../../src/instance/drift.js';
import type { MachineState } from '../../../src/store/machine.js';
import { parseVmfile, type MachineConfig } from '../../../src/vmfile/config.js';

function machine(settings: Record<string, unknown>): MachineConfig {
  const config = parseVmfile({ box: 'debian-12', cpus: 2, memory: '1GiB', folders: [{ host: '.', guest: '/vmfile', type: 'rsync' }], ...settings }, '/p/Vmfile.ts', '/p').machines[0];
  if (config === undefined) throw new Error('no machine');
  return config;
}

/** A record as vmup leaves it for machine({}) started with those settings. */
const running: MachineState = {
  name: 'default',
  instanceId: 'vmfile-1',
  createdAt: '2026-11-28T00:00:00.000Z',
  box: { name: 'debian-12', version: '2026.11.28', sha256: 'ab'.repeat(32) },
  user: 'vm',
  sshPort: 40000,
  launch: { cpus: 2, memory: 1024 ** 3 },
  forwards: [],
  folders: [{ host: '/p', guest: '/vmfile', readonly: false, type: 'rsync', tag: 'vmfile0' }],
};

describe('driftOf', () => {
  test('a machine as its Vmfile says has no drift', () => {
    expect(driftOf(machine({}), running)).toEqual([]);
  });

  test('cpus, memory, ports, folders and box changes are each one line', () => {
    const changed = machine({
      cpus: 1,
      memory: '2GiB',
      box: 'other',
      ports: [{ guest: 80, host: 8080 }],
      folders: [{ host: '.', guest: '/vmfile', type: 'rsync', readonly: true }, { host: 'data', guest: '/data', type: 'rsync' }],
    });
    expect(driftOf(changed, { ...running, forwards: [{ protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 2222, guestPort: 22 }] })).toEqual([
      'cpus 2 -> 1',
      'memory 1GiB -> 2GiB',
      'port 127.0.0.1:8080->80/tcp added',
      'port 127.0.0.1:2222->22/tcp removed',
      'folder /vmfile: rsync of /p -> rsync of /p, read-only',
      'folder /data (rsync of /p/data) added',
      'box debian-12 2026.11.28 -> other (only a new machine takes it: vmfile destroy, then vmup)',
    ]);
  });

  test('a host port moved by autoCorrect is not drift; one moved in the Vmfile is', () => {
    const forwards = [{ protocol: 'tcp' as const, hostIp: '127.0.0.1', hostPort: 8081, guestPort: 80 }];
    expect(driftOf(machine({ ports: [{ guest: 80, host: 8080, autoCorrect: true }] }), { ...running, forwards })).toEqual([]);
    expect(driftOf(machine({ ports: [{ guest: 80, host: 8080 }] }), { ...running, forwards })).toEqual(['port 127.0.0.1:8081->80/tcp -> 127.0.0.1:8080->80/tcp']);
  });

  test('a suspended machine resumes as it was: its CPUs and memory are not reported again here', () => {
    expect(driftOf(machine({ cpus: 1 }), { ...running, suspendedAt: '2026-11-28T01:00:00.000Z' })).toEqual([]);
  });

  test('a machine on another provider than the Vmfile now names stays where it is, and says how to move it', () => {
    const libvirt = { type: 'libvirt' as const, uri: 'qemu+ssh://root@lab/system', pool: 'default', domain: 'vmfile-default-0123456789ab' };
    expect(driftOf(machine({ provider: { type: 'libvirt', uri: 'qemu+ssh://root@lab/system' } }), { ...running, provider: libvirt })).toEqual([]);
    // The record keeps the host alone; the Vmfile's command= is how to reach it, not a move.
    expect(driftOf(machine({ provider: { type: 'libvirt', uri: 'qemu+ssh://root@lab/system?command=/usr/local/bin/ssh-lab' } }), { ...running, provider: libvirt })).toEqual([]);
    expect(driftOf(machine({}), { ...running, provider: libvirt })).toEqual([
      "provider libvirt qemu+ssh://root@lab/system -> vmfile's own QEMU (a machine stays where it was created: vmfile destroy, then vmup, makes it there)",
    ]);
    expect(driftOf(machine({ provider: { type: 'libvirt' } }), running)).toEqual([
      "provider vmfile's own QEMU -> libvirt qemu:///system (a machine stays where it was created: vmfile destroy, then vmup, makes it there)",
    ]);
  });
});

import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { boxDir, boxDirName, boxPaths, downloadPaths, machinePaths, vmfileHome } from '../../../src/store/layout.js';
import { MAX_SOCKET_PATH, runtimeDir, socketPath } from '../../../src/store/socket.js';
import { qemuFiles } from '../../../src/driver/qemu/files.js';
import { libvirtFiles } from '../../../src/driver/libvirt/files.js';
import { BOX_NAME_PATTERN } from '../../../src/vmfile/box-metadata.js';

describe('box names in the store', () => {
  test.each([
    ['debian-12', 'debian-12'],
    ['org/name', 'org-VAGRANTSLASH-name'],
    ['hashicorp/bionic64', 'hashicorp-VAGRANTSLASH-bionic64'],
  ])('%s is the directory %s', (name, dir) => {
    expect(boxDirName(name)).toBe(dir);
    expect(boxDir('/h', name)).toBe(`/h/boxes/${dir}`);
    expect(boxPaths('/h', name, '1.0').disk).toBe(`/h/boxes/${dir}/1.0/disk.qcow2`);
  });

  test('no valid name spells another one\'s directory, and none climbs out of the store', () => {
    // The marker cannot be part of a name, in any case, so the mapping is one to one.
    for (const name of ['org-VAGRANTSLASH-name', 'org-vagrantslash-name', 'a/b/c', '../x', 'a/..', '/a', 'a/', '.hidden', `${'a'.repeat(129)}`]) {
      expect(BOX_NAME_PATTERN.test(name), name).toBe(false);
    }
    expect(BOX_NAME_PATTERN.test(`${'a'.repeat(64)}/${'b'.repeat(63)}`)).toBe(true);
  });

  // Half a marker on each side of the slash spells the whole marker twice over.
  const tricky = ['p-VAGRANTSLASH/q', 'p/VAGRANTSLASH-q', 'p-vagrantslash/q', 'VAGRANTSLASH/q', 'p/VAGRANTSLASH', 'a-VAGRANTSLASH', 'VAGRANTSLASH-b', 'org/name', 'a-b/c-d', 'x--y/z'];

  test('every valid name comes back from its directory, so no two share one', () => {
    const valid = tricky.filter((name) => BOX_NAME_PATTERN.test(name));
    expect(valid).toEqual(expect.arrayContaining(['org/name', 'a-b/c-d', 'x--y/z']));
    for (const name of valid) expect(boxDirName(name).replaceAll('-VAGRANTSLASH-', '/'), name).toBe(name);
  });

  test('the two names that spelt one directory are not both box names', () => {
    const names = ['p-VAGRANTSLASH/q', 'p/VAGRANTSLASH-q'];
    expect(boxDirName(names[0] ?? '')).toBe(boxDirName(names[1] ?? ''));
    expect(names.filter((name) => BOX_NAME_PATTERN.test(name))).toEqual([]);
  });
});

describe('downloadPaths', () => {
  test('one set of files per URL, in the downloads directory, none named after the box', () => {
    const a = downloadPaths('/h', 'http://127.0.0.1/a.box');
    expect(a.partial).toMatch(/^\/h\/downloads\/[0-9a-f]{32}\.part$/);
    expect(a.meta).toBe(`${a.partial}.json`);
    expect(a.lock).toBe(a.partial.replace(/\.part$/, '.lock'));
    expect(downloadPaths('/h', 'http://127.0.0.1/a.box')).toEqual(a);
    expect(downloadPaths('/h', 'http://127.0.0.1/b.box').partial).not.toBe(a.partial);
  });
});

describe('machinePaths', () => {
  test('puts every file in the machine directory when the socket path is short: the shared names, and each driver\'s own', () => {
    const paths = machinePaths('/p', 'web');
    const dir = '/p/.vmfile/machines/web';
    const { virtiofsSocket, ...qemu } = qemuFiles(dir);
    expect(qemu).toEqual({
      overlay: `${dir}/overlay.qcow2`,
      firmwareVars: `${dir}/efivars.qcow2`,
      serialLog: `${dir}/serial.log`,
      pidFile: `${dir}/qemu.pid`,
      qmpSocket: `${dir}/qmp.sock`,
      agentSocket: `${dir}/qga.sock`,
      gdbSocket: `${dir}/gdb.sock`,
      noNetworkSocket: `${dir}/no-network.sock`,
    });
    expect(virtiofsSocket('vmfile0')).toBe(`${dir}/vmfile0.sock`);
    expect(libvirtFiles(dir)).toEqual({ domainXml: `${dir}/domain.xml`, networkXml: `${dir}/libvirt-network.xml`, tunnelRecord: `${dir}/tunnel.json`, tunnelLog: `${dir}/tunnel.log` });
    expect(paths).toEqual({
      dir,
      state: `${dir}/machine.json`,
      provisioned: `${dir}/provisioned.json`,
      privateKey: `${dir}/id_ed25519`,
      publicKey: `${dir}/id_ed25519.pub`,
      hostPrivateKey: `${dir}/ssh_host_ed25519_key`,
      hostPublicKey: `${dir}/ssh_host_ed25519_key.pub`,
      knownHosts: `${dir}/known_hosts`,
      seedDir: `${dir}/seed`,
      sshControl: `${dir}/ssh.sock`,
      lock: `${dir}/lock`,
      sshConfig: `${dir}/ssh_config`,
      warmLoginKey: `${dir}/warm_id_ed25519`,
      warmHostKey: `${dir}/warm_ssh_host_ed25519_key.pub`,
    });
  });

  // "/.vmfile/machines/web/qmp.sock" is 30 bytes, so the limit of 107 (sun_path) falls at a 77-byte project path.
  test.each([
    ['exactly 107 bytes', `/${'a'.repeat(76)}`, true],
    ['108 bytes', `/${'a'.repeat(77)}`, false],
    ['108 bytes of multi-byte characters', `/${'é'.repeat(38)}a`, false],
  ])("the QEMU driver's QMP socket at %s: in the machine dir = %s", (_label, projectDir, direct) => {
    const socket = qemuFiles(machinePaths(projectDir, 'web').dir).qmpSocket;
    expect(socket === join(projectDir, '.vmfile/machines/web/qmp.sock')).toBe(direct);
    expect(Buffer.byteLength(socket)).toBeLessThanOrEqual(MAX_SOCKET_PATH);
  });

  test("OpenSSH's control socket keeps room for the 17-byte suffix it binds first", () => {
    // "/.vmfile/machines/web/ssh.sock" is 30 bytes; with the suffix, a 60-byte project path is the longest kept in place.
    expect(machinePaths(`/${'a'.repeat(59)}`, 'web').sshControl).toBe(`/${'a'.repeat(59)}/.vmfile/machines/web/ssh.sock`);
    const moved = machinePaths(`/${'a'.repeat(60)}`, 'web').sshControl;
    expect(moved).toMatch(new RegExp(`^${runtimeDir()}/[0-9a-f]{16}-ssh\\.sock$`));
    expect(Buffer.byteLength(moved) + 17).toBeLessThanOrEqual(MAX_SOCKET_PATH);
  });

  test('a long path gets a hashed socket name in the runtime dir, the same every time', () => {
    const projectDir = `/home/someone/${'deep/'.repeat(20)}project`;
    const first = qemuFiles(machinePaths(projectDir, 'web').dir);

    expect(first.qmpSocket).toMatch(new RegExp(`^${runtimeDir()}/[0-9a-f]{16}-qmp\\.sock$`));
    expect(qemuFiles(machinePaths(projectDir, 'web').dir).qmpSocket).toBe(first.qmpSocket);
    // Only the socket moves.
    expect(first.pidFile).toBe(join(projectDir, '.vmfile/machines/web/qemu.pid'));
  });

  test('different machines and projects get different runtime sockets', () => {
    const projectDir = `/home/someone/${'deep/'.repeat(20)}project`;
    const sockets = new Set([
      socketPath(machinePaths(projectDir, 'web').dir, 'qmp.sock'),
      socketPath(machinePaths(projectDir, 'db').dir, 'qmp.sock'),
      socketPath(machinePaths(`${projectDir}2`, 'web').dir, 'qmp.sock'),
    ]);
    expect(sockets.size).toBe(3);
  });
});

const UID = process.getuid?.() ?? 0;

describe('runtimeDir', () => {
  test.each([
    [{ XDG_RUNTIME_DIR: '/run/user/1000' }, '/run/user/1000/vmfile'],
    [{ XDG_RUNTIME_DIR: '' }, join(tmpdir(), `vmfile-${UID}`)],
    [{}, join(tmpdir(), `vmfile-${UID}`)],
  ])('%j -> %s', (env, expected) => {
    expect(runtimeDir(env)).toBe(expected);
  });
});

describe('vmfileHome', () => {
  test.each([
    [{ VMFILE_HOME: '/srv/vmfile' }, '/srv/vmfile'],
    [{ VMFILE_HOME: '' }, join(homedir(), '.vmfile')],
    [{}, join(homedir(), '.vmfile')],
  ])('%j -> %s', (env, expected) => {
    expect(vmfileHome(env)).toBe(expected);
  });
});

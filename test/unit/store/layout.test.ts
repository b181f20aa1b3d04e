import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { boxDir, boxDirName, boxPaths, downloadPaths, machinePaths, runtimeDir, vmfileHome } from '../../../src/store/layout.js';
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
  test('puts every file in the machine directory when the socket path is short', () => {
    const paths = machinePaths('/p', 'web');
    const dir = '/p/.vmfile/machines/web';
    expect(paths).toEqual({
      dir,
      overlay: `${dir}/overlay.qcow2`,
      firmwareVars: `${dir}/efivars.qcow2`,
      state: `${dir}/machine.json`,
      provisioned: `${dir}/provisioned.json`,
      privateKey: `${dir}/id_ed25519`,
      publicKey: `${dir}/id_ed25519.pub`,
      hostPrivateKey: `${dir}/ssh_host_ed25519_key`,
      hostPublicKey: `${dir}/ssh_host_ed25519_key.pub`,
      knownHosts: `${dir}/known_hosts`,
      seedDir: `${dir}/seed`,
      serialLog: `${dir}/serial.log`,
      domainXml: `${dir}/domain.xml`,
      pidFile: `${dir}/qemu.pid`,
      qmpSocket: `${dir}/qmp.sock`,
      agentSocket: `${dir}/qga.sock`,
      gdbSocket: `${dir}/gdb.sock`,
      sshControl: `${dir}/ssh.sock`,
      lock: `${dir}/lock`,
      sshConfig: `${dir}/ssh_config`,
      warmLoginKey: `${dir}/warm_id_ed25519`,
      warmHostKey: `${dir}/warm_ssh_host_ed25519_key.pub`,
    });
  });

  // "/.vmfile/machines/web/qmp.sock" is 30 bytes, so the limit of 100 falls at a 70-byte project path.
  test.each([
    ['exactly 100 bytes', `/${'a'.repeat(69)}`, true],
    ['101 bytes', `/${'a'.repeat(70)}`, false],
    ['101 bytes of multi-byte characters', `/${'é'.repeat(35)}`, false],
  ])('a socket path of %s: in the machine dir = %s', (_label, projectDir, direct) => {
    const socket = machinePaths(projectDir, 'web').qmpSocket;
    expect(socket === join(projectDir, '.vmfile/machines/web/qmp.sock')).toBe(direct);
    expect(Buffer.byteLength(socket)).toBeLessThanOrEqual(100);
  });

  test("OpenSSH's control socket keeps room for the 17-byte suffix it binds first", () => {
    // "/.vmfile/machines/web/ssh.sock" is 30 bytes; with the suffix, a 53-byte project path is the longest kept in place.
    expect(machinePaths(`/${'a'.repeat(52)}`, 'web').sshControl).toBe(`/${'a'.repeat(52)}/.vmfile/machines/web/ssh.sock`);
    const moved = machinePaths(`/${'a'.repeat(53)}`, 'web').sshControl;
    expect(moved).toMatch(new RegExp(`^${runtimeDir()}/[0-9a-f]{16}-ssh\\.sock$`));
    expect(Buffer.byteLength(moved) + 17).toBeLessThanOrEqual(100);
  });

  test('a long path gets a hashed socket name in the runtime dir, the same every time', () => {
    const projectDir = `/home/someone/${'deep/'.repeat(20)}project`;
    const first = machinePaths(projectDir, 'web');

    expect(first.qmpSocket).toMatch(new RegExp(`^${runtimeDir()}/[0-9a-f]{16}-qmp\\.sock$`));
    expect(machinePaths(projectDir, 'web').qmpSocket).toBe(first.qmpSocket);
    // Only the socket moves.
    expect(first.lock).toBe(join(projectDir, '.vmfile/machines/web/lock'));
  });

  test('different machines and projects get different runtime sockets', () => {
    const projectDir = `/home/someone/${'deep/'.repeat(20)}project`;
    const sockets = new Set([
      machinePaths(projectDir, 'web').qmpSocket,
      machinePaths(projectDir, 'db').qmpSocket,
      machinePaths(`${projectDir}2`, 'web').qmpSocket,
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

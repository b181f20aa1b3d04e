import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { machinePaths, runtimeDir, vmfileHome } from '../../../src/store/layout.js';

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
      pidFile: `${dir}/qemu.pid`,
      qmpSocket: `${dir}/qmp.sock`,
      lock: `${dir}/lock`,
      sshConfig: `${dir}/ssh_config`,
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

/**
 * A real libvirt host for the e2e tests, made and unmade by the test: Debian's libvirtd
 * and virtlogd started as daemons (no systemd here), a directory storage pool of the
 * test's own, and an OpenSSH server on a loopback port with keys of its own, so that
 * qemu+ssh://root@127.0.0.1:PORT/system goes through a real SSH login. The URI's
 * `command` is a small wrapper that pins that server's host key (StrictHostKeyChecking
 * yes against a known_hosts of the test's own): libvirt and vmfile both reach the host
 * through it. Daemons already running are used and left running; those started here
 * are stopped.
 */
import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './cli.js';

const exec = promisify(execFile);

export interface LibvirtHostFixture {
  pool: string;
  localUri: string;
  remoteUri: string;
  /** What the remote URI shows in vmfile status. */
  remoteLabel: string;
  stop(): Promise<void>;
}

async function running(name: string): Promise<boolean> {
  return exec('pgrep', ['-x', name]).then(
    () => true,
    () => false,
  );
}

export const virsh = async (uri: string, ...args: string[]): Promise<string> => (await exec('virsh', ['-q', '-c', uri, ...args])).stdout;

export async function startLibvirtHost(): Promise<LibvirtHostFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'vmfile-e2e-libvirt-'));
  const started: string[] = [];
  // What udev does on a Debian host: /dev/kvm for the kvm group, which libvirt's QEMU
  // user is in. Where it is root's alone, libvirt takes KVM for usable when probing QEMU
  // and for unusable when checking its cache, and probes QEMU again on every call.
  const kvm = await stat('/dev/kvm').catch(() => undefined);
  if (kvm !== undefined && (kvm.mode & 0o060) === 0) {
    await exec('chgrp', ['kvm', '/dev/kvm']);
    await chmod('/dev/kvm', 0o660);
  }
  for (const daemon of ['virtlogd', 'libvirtd']) {
    if (await running(daemon)) continue;
    await exec(daemon, ['-d']);
    started.push(daemon);
  }
  const localUri = 'qemu:///system';
  for (let i = 0; i < 50 && !(await virsh(localUri, 'list').then(() => true, () => false)); i++) await new Promise((r) => setTimeout(r, 200));

  const pool = `vmfile-e2e-${process.pid}`;
  const poolDir = join(dir, 'pool');
  await mkdir(poolDir, { mode: 0o711 });
  await chmod(dir, 0o711);
  await virsh(localUri, 'pool-define-as', pool, 'dir', '--target', poolDir);
  await virsh(localUri, 'pool-start', pool);

  // sshd on loopback with its own host key, taking only the test's key, for root.
  await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
  for (const key of ['host_key', 'client_key']) await exec('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `vmfile-e2e ${key}`, '-f', join(dir, key)]);
  await writeFile(join(dir, 'authorized_keys'), await readFile(join(dir, 'client_key.pub')), { mode: 0o600 });
  const port = await freePort();
  await writeFile(
    join(dir, 'sshd_config'),
    [
      `ListenAddress 127.0.0.1:${port}`,
      `HostKey ${join(dir, 'host_key')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      // The test's files live in /tmp, which StrictModes would refuse for root.
      'StrictModes no',
      'AllowTcpForwarding yes',
      '',
    ].join('\n'),
  );
  await exec('/usr/sbin/sshd', ['-f', join(dir, 'sshd_config')]);
  const hostKey = (await readFile(join(dir, 'host_key.pub'), 'utf8')).split(' ').slice(0, 2).join(' ');
  await writeFile(join(dir, 'known_hosts'), `[127.0.0.1]:${port} ${hostKey}\n`);
  const wrapper = join(dir, 'ssh');
  await writeFile(wrapper, `#!/bin/sh\nexec ssh -F /dev/null -o UserKnownHostsFile=${join(dir, 'known_hosts')} -o StrictHostKeyChecking=yes "$@"\n`, { mode: 0o755 });
  const remoteUri = `qemu+ssh://root@127.0.0.1:${port}/system?keyfile=${join(dir, 'client_key')}&command=${wrapper}`;
  for (let i = 0; i < 50 && !(await virsh(remoteUri, 'list').then(() => true, () => false)); i++) await new Promise((r) => setTimeout(r, 200));

  return {
    pool,
    localUri,
    remoteUri,
    remoteLabel: `root@127.0.0.1:${port}`,
    async stop() {
      const sshd = Number.parseInt(await readFile(join(dir, 'sshd.pid'), 'utf8').catch(() => ''), 10);
      if (Number.isInteger(sshd)) process.kill(sshd, 'SIGTERM');
      await virsh(localUri, 'pool-destroy', pool).catch(() => '');
      await virsh(localUri, 'pool-undefine', pool).catch(() => '');
      for (const daemon of started.reverse()) await exec('pkill', ['-x', daemon]).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

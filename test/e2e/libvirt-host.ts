/**
 * A real libvirt host for the e2e tests, made and unmade by the test: Debian's libvirtd
 * and virtlogd started as daemons (no systemd here), a directory storage pool of the
 * test's own, and an OpenSSH server on a loopback port with keys of its own, so that
 * qemu+ssh://root@127.0.0.1:PORT/system goes through a real SSH login. The URI's
 * `command` is a small wrapper that pins that server's host key (StrictHostKeyChecking
 * yes against a known_hosts of the test's own): libvirt and vmfile both reach the host
 * through it.
 *
 * The host lives in a network namespace the fixture makes: libvirtd, the QEMUs it
 * starts, the bridges of the libvirt networks vmfile defines, and sshd are all inside
 * it, and the test runs vmfile there too (`netns` of cli()), so nothing reaches this
 * machine's own network. libvirtd must therefore be started here, not found running;
 * virtlogd, which has no network, is used if it runs.
 */
import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './cli.js';

const exec = promisify(execFile);

export interface LibvirtHostFixture {
  /** The network namespace the host is in; give it to cli() as `netns`. */
  netns: string;
  pool: string;
  localUri: string;
  remoteUri: string;
  /** What the remote URI shows in vmfile status. */
  remoteLabel: string;
  /** Take the "remote" host off the network (its sshd stops), and bring it back. */
  stopSsh(): Promise<void>;
  startSsh(): Promise<void>;
  stop(): Promise<void>;
}

async function running(name: string): Promise<boolean> {
  return exec('pgrep', ['-x', name]).then(
    () => true,
    () => false,
  );
}

export const virsh = async (uri: string, ...args: string[]): Promise<string> => (await exec('virsh', ['-q', '-c', uri, ...args])).stdout;

/** Runs a program inside the namespace (its loopback is the libvirt host's). */
export const inNetns = async (netns: string, program: string, ...args: string[]): Promise<string> => (await exec('ip', ['netns', 'exec', netns, program, ...args])).stdout;

/** The body served at `url` inside the namespace, fetched from there. */
export const fetchIn = (netns: string, url: string): Promise<string> =>
  inNetns(netns, process.execPath, '-e', 'fetch(process.argv[1]).then((r) => r.text()).then((t) => process.stdout.write(t))', url);

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
  if (await running('libvirtd')) throw new Error('libvirtd is running already: these tests start their own inside a network namespace; stop it first (pkill -x libvirtd)');
  const netns = `vmfile-e2e-${process.pid}`;
  await exec('ip', ['netns', 'add', netns]);
  await inNetns(netns, 'ip', 'link', 'set', 'lo', 'up');
  if (!(await running('virtlogd'))) {
    await exec('virtlogd', ['-d']);
    started.push('virtlogd');
  }
  await inNetns(netns, 'libvirtd', '-d');
  started.push('libvirtd');
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
  const startSsh = async () => {
    await inNetns(netns, '/usr/sbin/sshd', '-f', join(dir, 'sshd_config'));
  };
  const stopSsh = async () => {
    const sshd = Number.parseInt(await readFile(join(dir, 'sshd.pid'), 'utf8').catch(() => ''), 10);
    if (!Number.isInteger(sshd)) return;
    process.kill(sshd, 'SIGTERM');
    for (let i = 0; i < 50 && (await exec('kill', ['-0', String(sshd)]).then(() => true, () => false)); i++) await new Promise((r) => setTimeout(r, 100));
  };
  await startSsh();
  const hostKey = (await readFile(join(dir, 'host_key.pub'), 'utf8')).split(' ').slice(0, 2).join(' ');
  await writeFile(join(dir, 'known_hosts'), `[127.0.0.1]:${port} ${hostKey}\n`);
  const wrapper = join(dir, 'ssh');
  await writeFile(wrapper, `#!/bin/sh\nexec ssh -F /dev/null -o UserKnownHostsFile=${join(dir, 'known_hosts')} -o StrictHostKeyChecking=yes "$@"\n`, { mode: 0o755 });
  const remoteUri = `qemu+ssh://root@127.0.0.1:${port}/system?keyfile=${join(dir, 'client_key')}&command=${wrapper}`;
  for (let i = 0; i < 50 && !(await inNetns(netns, 'virsh', '-q', '-c', remoteUri, 'list').then(() => true, () => false)); i++) await new Promise((r) => setTimeout(r, 200));

  return {
    netns,
    pool,
    localUri,
    remoteUri,
    remoteLabel: `root@127.0.0.1:${port}`,
    stopSsh,
    startSsh,
    async stop() {
      await stopSsh().catch(() => undefined);
      await virsh(localUri, 'pool-destroy', pool).catch(() => '');
      await virsh(localUri, 'pool-undefine', pool).catch(() => '');
      for (const daemon of started.reverse()) await exec('pkill', ['-x', daemon]).catch(() => undefined);
      await exec('ip', ['netns', 'del', netns]).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The first login to a Vagrant box. Such a box follows Vagrant's convention instead of
 * reading vmfile's cloud-init seed: user "vagrant" logs in with Vagrant's published
 * insecure key, and the SSH host key is whatever the box was made with, the same in
 * every copy of it. So the machine is made its own first (guest/take-over.ts): the
 * machine's login key replaces every authorized key (the insecure one goes), the
 * machine's host key replaces the box's, sshd restarts with it, and the hostname is set.
 * From then on the machine is reached like any other, host key pinned.
 *
 * Where the driver can hold the SSH port back, that happens through the guest agent
 * before anyone can reach sshd (guest/login.ts). Without an agent, the one trust
 * decision: a first SSH connection that accepts whatever host key answers, on 127.0.0.1,
 * to the port QEMU (started by this very command) forwards; the key it is given is never
 * recorded, the take-over ends any other session, and the rest goes over a pinned login.
 * If a box has cloud-init too, the seed has already installed the machine's keys; the
 * insecure key still logs in then, and is removed all the same.
 *
 * A machine started from a warm state (lifecycle/warm.ts) is taken over the same way,
 * with the state's own login and its host key pinned, and more: a new machine-id, the
 * clock, and first of all the RNG, fed from the host and reseeded, because every machine
 * from that state starts with the same kernel RNG state (docs/design.md).
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../errors.js';
import { macFor, WARM_PRIVATE_MAC } from '../network/address.js';
import type { SshTarget } from '../ssh/client.js';
import { newMachineId, type TakeOverOptions } from './take-over.js';
import { publicKeyBlob, readPublicKey } from '../ssh/keys.js';
import type { MachinePaths } from '../store/layout.js';

/** Where Vagrant's gem (holding keys/vagrant, the insecure private key) is installed: Debian's vagrant package, HashiCorp's. */
const VAGRANT_GEM_DIRS = ['/usr/share/rubygems-integration/all/gems', '/opt/vagrant/embedded/gems/gems', '/opt/vagrant/embedded/gems'];

export async function insecureKey(machine: string, env: NodeJS.ProcessEnv = process.env, gemDirs: readonly string[] = VAGRANT_GEM_DIRS): Promise<string> {
  const given = env['VMFILE_VAGRANT_KEY'];
  const candidates = given !== undefined && given !== '' ? [given] : [];
  for (const dir of gemDirs) {
    const gems = (await readdir(dir).catch(() => [])).filter((entry) => /^vagrant-\d/.test(entry)).sort().reverse();
    candidates.push(...gems.map((gem) => join(dir, gem, 'keys', 'vagrant')));
  }
  for (const path of candidates) {
    const text = await readFile(path, 'utf8').catch(() => undefined);
    if (text !== undefined) return text;
  }
  throw new UserError(`machine "${machine}": its box is a Vagrant box, first reached with Vagrant's insecure key, and that key is not on this host`, {
    hint: "install Debian's vagrant package (apt-get install --no-install-recommends vagrant), or point VMFILE_VAGRANT_KEY at the key file",
  });
}

/** The target of the first login: the box's user, Vagrant's insecure key, any host key. */
export function insecureTarget(pinned: SshTarget, key: string): SshTarget {
  return { ...pinned, label: `${pinned.label} (first login, Vagrant's insecure key)`, privateKey: key, hostKey: 'unpinned' };
}

export interface FirstLogin {
  /** Tried before the machine's own login; undefined when it is gone (a warm state's copies, once removed). */
  target?: SshTarget;
  /** Take over even when the machine's own login answered (a warm state's key must go either way). */
  overOwnLoginToo: boolean;
  options: TakeOverOptions;
  /** What the take-over is doing, for the progress line. */
  progress: string;
}

/** How a machine still on its box's (or its warm state's) login is first reached and made its own. */
export async function firstLogin(
  login: 'vagrant-insecure-key' | 'warm-state',
  pinned: SshTarget,
  paths: MachinePaths,
  machine: { name: string; projectDir: string; privateIp?: string | undefined },
): Promise<FirstLogin> {
  if (login === 'vagrant-insecure-key') {
    return { target: insecureTarget(pinned, await insecureKey(machine.name)), overOwnLoginToo: false, options: {}, progress: "first login with Vagrant's insecure key: installing the machine's own keys" };
  }
  const target = await warmStateTarget(pinned, paths);
  const nic = machine.privateIp === undefined ? {} : { nic: { from: WARM_PRIVATE_MAC, to: macFor(machine.projectDir, machine.name, 1) } };
  return {
    ...(target === undefined ? {} : { target }),
    overOwnLoginToo: true,
    options: { machineId: newMachineId(), reseed: true, setClock: true, ...nic },
    progress: 'becoming this machine: its own keys, machine-id, hostname, RNG and clock',
  };
}

/** The login of the warm state a machine was made over (copied into the machine's directory), its host key pinned; undefined once it is gone. */
export async function warmStateTarget(pinned: SshTarget, paths: MachinePaths): Promise<SshTarget | undefined> {
  const [key, host] = await Promise.all([readFile(paths.warmLoginKey, 'utf8').catch(() => undefined), readPublicKey(paths.warmHostKey).catch(() => undefined)]);
  if (key === undefined || host === undefined) return undefined;
  return { ...pinned, label: `${pinned.label} (started from a warm state)`, privateKey: key, hostKey: publicKeyBlob(host) };
}

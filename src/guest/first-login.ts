/**
 * The first login to a Vagrant box. Such a box follows Vagrant's convention instead of
 * reading vmfile's cloud-init seed: user "vagrant" logs in with Vagrant's published
 * insecure key, and the SSH host key is whatever the box was made with, the same in
 * every copy of it. So the first boot logs in with that key and makes the machine its
 * own: the machine's login key replaces every authorized key (the insecure one goes),
 * the machine's host key replaces the box's, sshd restarts with it, and the hostname is
 * set. From then on the machine is reached like any other, host key pinned.
 *
 * The one trust decision: that first connection accepts whatever host key answers. It
 * goes to 127.0.0.1, to a port QEMU (started by this very command) forwards to the
 * guest, and nothing else can answer there; the key it is given is never recorded.
 * If a box has cloud-init too, the seed has already installed the machine's keys; the
 * insecure key still logs in then, and is removed all the same.
 *
 * A machine started from a warm state (lifecycle/warm.ts) is taken over the same way,
 * with the state's own login and its host key pinned, and more: a new machine-id, the
 * clock, and first of all the RNG, fed from the host and reseeded, because every machine
 * from that state starts with the same kernel RNG state (docs/design.md).
 */
import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../errors.js';
import { macFor, WARM_PRIVATE_MAC } from '../network/address.js';
import type { SshSession, SshTarget } from '../ssh/client.js';
import { publicKeyBlob, readPublicKey } from '../ssh/keys.js';
import { shellCommand } from '../ssh/quote.js';
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

const TAKE_OVER = `set -eu
user=$1 login_key=$2 host_public=$3 name=$4 machine_id=$5 clock=$6 nic_from=$7 nic_to=$8
# A guest from saved memory keeps the time it was saved at.
if [ -n "$clock" ]; then date -u -s "@$clock" >/dev/null; fi
# Standard input: a line of host randomness (may be empty), then the host private key.
IFS= read -r seed
if [ -n "$seed" ]; then
  # Mixed into the kernel's input pool, then a reseed of the RNG (RNDRESEEDCRNG) so
  # that this guest's random numbers part from any other copy of the same memory.
  printf '%s' "$seed" >/dev/urandom
  perl -e 'open(my $f, ">", "/dev/urandom") or die "$!\\n"; ioctl($f, 0x5207, 0) or die "RNDRESEEDCRNG: $!\\n"'
fi
home=$(getent passwd "$user" | cut -d: -f6)
group=$(id -gn "$user")
umask 077
mkdir -p "$home/.ssh"
printf '%s\\n' "$login_key" >"$home/.ssh/authorized_keys.vmfile"
chown "$user:$group" "$home/.ssh" "$home/.ssh/authorized_keys.vmfile"
mv -f "$home/.ssh/authorized_keys.vmfile" "$home/.ssh/authorized_keys"
rm -f /etc/ssh/ssh_host_*
cat >/etc/ssh/ssh_host_ed25519_key
printf '%s\\n' "$host_public" >/etc/ssh/ssh_host_ed25519_key.pub
chmod 0644 /etc/ssh/ssh_host_ed25519_key.pub
if [ -n "$machine_id" ]; then
  old_id=$(cat /etc/machine-id 2>/dev/null || true)
  case $old_id in *[!0-9a-f]*) old_id= ;; esac
  printf '%s\\n' "$machine_id" >/etc/machine-id
  if [ -f /var/lib/dbus/machine-id ] && [ ! -L /var/lib/dbus/machine-id ]; then printf '%s\\n' "$machine_id" >/var/lib/dbus/machine-id; fi
  # journald files its journal under the machine-id and stamps each entry with the boot
  # ID, both read once at its start: the journal so far moves to the new machine-id, and
  # journald starts again (not waited for) to take on both new IDs.
  for dir in /var/log/journal /run/log/journal; do
    if [ -n "$old_id" ] && [ -d "$dir/$old_id" ] && [ ! -e "$dir/$machine_id" ]; then mv "$dir/$old_id" "$dir/$machine_id"; fi
  done
  if [ -d /run/systemd/system ]; then systemctl --no-block restart systemd-journald.service 2>/dev/null || true; fi
fi
if [ -n "$nic_from" ]; then
  # The NIC's MAC came with the saved memory; the machine's own is what its network knows.
  dev=$(ip -o link | awk -v mac="$nic_from" 'tolower($0) ~ mac {sub(":", "", $2); print $2; exit}')
  if [ -n "$dev" ]; then ip link set dev "$dev" address "$nic_to"; fi
fi
printf '%s\\n' "$name" >/etc/hostname
hostname "$name"
if grep -q '^127\\.0\\.1\\.1[[:space:]]' /etc/hosts; then sed -i "s/^127\\.0\\.1\\.1[[:space:]].*/127.0.1.1\\t$name/" /etc/hosts; else printf '127.0.1.1\\t%s\\n' "$name" >>/etc/hosts; fi
sync
# OpenSSH before 9.8 starts each connection as a fresh sshd, which reads the host key
# then: new connections get the new key at once, and sshd is left alone. From 9.8 the
# listener holds the keys for sshd-session, so it must start again. sshd's running
# sessions (this one) outlive it. SIGHUP makes it start itself again, quicker than the
# service manager; it closes its listening socket and binds a new one, and the take-over
# returns once that one is there (up to 5 s), or the next connection could find none.
version=$(ssh -V 2>&1 | sed -n 's/^OpenSSH_\\([0-9]*\\)\\.\\([0-9]*\\).*/\\1 \\2/p')
if [ -n "$version" ]; then
  set -- $version
  if [ "$1" -lt 9 ] || { [ "$1" -eq 9 ] && [ "$2" -lt 8 ]; }; then exit 0; fi
fi
listeners() { ss -Hltne 'sport = :22' 2>/dev/null | grep -o 'ino:[0-9]*' | sort | tr '\\n' ' '; }
before=$(listeners)
if [ -s /run/sshd.pid ] && kill -HUP "$(cat /run/sshd.pid)" 2>/dev/null; then
  if [ -n "$before" ]; then
    for i in $(seq 100); do now=$(listeners); if [ -n "$now" ] && [ "$now" != "$before" ]; then break; fi; sleep 0.05; done
  fi
  exit 0
fi
systemctl restart ssh 2>/dev/null || systemctl restart sshd 2>/dev/null || service ssh restart 2>/dev/null || service sshd restart
`;

export interface TakeOverOptions {
  /** A new /etc/machine-id (32 hex digits); undefined leaves the guest's. */
  machineId?: string;
  /** Host randomness mixed into the guest's RNG, then reseeded, before anything else. */
  reseed?: boolean;
  /** Set the guest's clock from the host's (a guest from saved memory). */
  setClock?: boolean;
  /** Give the NIC with MAC `from` the MAC `to` (a private NIC whose MAC came with saved memory). */
  nic?: { from: string; to: string };
}

/** Over the first login's session: the machine's keys and hostname in, the box's (or the warm state's) out. */
export async function takeOver(session: SshSession, machine: string, paths: MachinePaths, user: string, hostname: string, options: TakeOverOptions = {}): Promise<void> {
  const argv = ['sudo', '-n', 'sh', '-c', TAKE_OVER, 'vmfile-first-login', user, await readPublicKey(paths.publicKey), await readPublicKey(paths.hostPublicKey), hostname, options.machineId ?? '', options.setClock === true ? (Date.now() / 1000).toFixed(3) : '', options.nic?.from ?? '', options.nic?.to ?? ''];
  const seed = options.reseed === true ? randomBytes(64).toString('hex') : '';
  let output = '';
  const collect = (chunk: string): void => void (output += chunk);
  const code = await session.exec(shellCommand(argv), { stdin: `${seed}\n${await readFile(paths.hostPrivateKey, 'utf8')}`, onStdout: collect, onStderr: collect });
  if (code !== 0) {
    throw new UserError(`machine "${machine}": the first login could not install the machine's keys (exit ${code}): ${output.trim().slice(-500)}`, {
      hint: `the box must let user "${user}" run sudo without a password, as Vagrant boxes do; vmfile destroy removes the machine`,
    });
  }
}

/** A new machine-id, as systemd-id128 writes it. */
export function newMachineId(): string {
  return randomBytes(16).toString('hex');
}

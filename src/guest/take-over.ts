/**
 * The take-over: the script that makes a guest this machine, run once as root right
 * after the first login (guest/first-login.ts says how that login is reached). It
 * reseeds the RNG first (a warm state's copies share its state), sets the clock, puts
 * the machine's login key and host key in place of the box's or the warm state's, a new
 * machine-id, the NIC's own MAC and the hostname, and restarts sshd where it must. It
 * runs over SSH through sudo, or through the QEMU guest agent, where nothing but vmfile
 * can reach the guest (a Vagrant box's first boot, before its SSH port is opened).
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { UserError } from '../errors.js';
import type { SshSession } from '../ssh/client.js';
import { readPublicKey } from '../ssh/keys.js';
import { shellCommand } from '../ssh/quote.js';
import type { MachinePaths } from '../store/layout.js';

const TAKE_OVER = `set -eu
user=$1 login_key=$2 host_public=$3 name=$4 machine_id=$5 clock=$6 nic_from=$7 nic_to=$8 end_sessions=$9
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
if [ -n "$end_sessions" ]; then
  # Anyone who logged in with the box's published key before this ran is logged out:
  # every sshd session of the user but this script's own ancestors ends.
  keep=' '; p=$$
  while [ "$p" -gt 1 ] 2>/dev/null; do keep="$keep$p "; p=$(cut -d' ' -f4 "/proc/$p/stat" 2>/dev/null || echo 0); done
  for d in /proc/[0-9]*; do
    pid=\${d#/proc/}
    case $keep in *" $pid "*) continue ;; esac
    case $(tr '\\0' ' ' <"$d/cmdline" 2>/dev/null) in "sshd: $user"* | "sshd-session: $user"*) kill -KILL "$pid" 2>/dev/null || true ;; esac
  done
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
  /** End every other SSH session of the user: whoever came in with the box's published key first. */
  endSessions?: boolean;
}

/** Runs the take-over script in the guest as root: over SSH through sudo, or through the guest agent. */
export type TakeOverRunner = (argv: readonly string[], stdin: string) => Promise<{ code: number; output: string }>;

/** Over the first login's session: sudo, as the box's user may without a password (Vagrant's convention). */
export function overSsh(session: SshSession): TakeOverRunner {
  return async (argv, stdin) => {
    let output = '';
    const collect = (chunk: string): void => void (output += chunk);
    const code = await session.exec(shellCommand(['sudo', '-n', ...argv]), { stdin, onStdout: collect, onStderr: collect });
    return { code, output };
  };
}

/** The machine's keys and hostname in, the box's (or the warm state's) out; `run` is how it reaches the guest as root. */
export async function takeOver(run: TakeOverRunner, machine: string, paths: MachinePaths, user: string, hostname: string, options: TakeOverOptions = {}): Promise<void> {
  const argv = ['sh', '-c', TAKE_OVER, 'vmfile-first-login', user, await readPublicKey(paths.publicKey), await readPublicKey(paths.hostPublicKey), hostname, options.machineId ?? '', options.setClock === true ? (Date.now() / 1000).toFixed(3) : '', options.nic?.from ?? '', options.nic?.to ?? '', options.endSessions === true ? 'yes' : ''];
  const seed = options.reseed === true ? randomBytes(64).toString('hex') : '';
  const { code, output } = await run(argv, `${seed}\n${await readFile(paths.hostPrivateKey, 'utf8')}`);
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

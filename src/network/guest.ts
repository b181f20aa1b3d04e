/**
 * The guest side of the private network, applied over SSH at every vmup and resume:
 * the address on the NIC with the machine's private MAC, and a managed block in
 * /etc/hosts naming every machine of the Vmfile. Doing it at each boot (not once by
 * cloud-init) means a changed address or a machine added to the Vmfile takes effect.
 */
import { GuestError } from '../errors.js';
import type { SshSession } from '../ssh/client.js';
import { shellCommand } from '../ssh/quote.js';
import { HOSTS_BLOCK_BEGIN as BEGIN, HOSTS_BLOCK_END as END, hostsBlock } from '../vmfile/private-ip.js';

export async function configurePrivateNetwork(
  session: SshSession,
  machine: string,
  mac: string,
  ip: string,
  peers: readonly { name: string; hostname: string; ip: string }[],
): Promise<void> {
  // The interface is found by MAC: its name depends on the PCI slot and the distribution.
  const script = [
    'set -e',
    `dev=$(ip -o link | awk -v mac=${shellCommand([mac.toLowerCase()])} 'tolower($0) ~ mac {sub(":", "", $2); print $2; exit}')`,
    '[ -n "$dev" ] || { echo "no network interface with MAC $1" >&2; exit 3; }',
    `ip addr replace ${shellCommand([`${ip}/24`])} dev "$dev"`,
    'ip link set "$dev" up',
    `block=${shellCommand([hostsBlock(peers)])}`,
    `sed -i '/^${BEGIN}$/,/^${END}$/d' /etc/hosts`,
    'printf "%s\\n" "$block" >> /etc/hosts',
  ].join('\n');
  // One sudo for the whole script: each sudo costs about a second under TCG.
  const result = await session.capture(`sudo -n sh -c ${shellCommand([script])} sh ${shellCommand([mac])}`);
  if (result.code !== 0) {
    throw new GuestError(`machine "${machine}": could not set up its private network address ${ip}: ${result.stderr.trim()}`);
  }
}

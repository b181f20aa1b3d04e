/**
 * Checks on the IPv4 addresses a Vmfile gives its machines on the private network.
 * Pure functions, no I/O.
 *
 * The private network is always one /24: the hub is a plain switch, with no router,
 * so every machine must sit in the same subnet as the others.
 */
const OCTET = '(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
/** Dotted quad without leading zeros: "010" means 8 to some tools and 10 to others. */
const IPV4 = new RegExp(`^${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}$`);

/** QEMU's user network (the first NIC, for SSH and the internet) uses this /24 in every guest. */
const USER_NETWORK_SUBNET = '10.0.2.0/24';

/** Marks of the block vmfile keeps in a guest's /etc/hosts (written at boot, removed by package). */
export const HOSTS_BLOCK_BEGIN = '# vmfile private network: begin';
export const HOSTS_BLOCK_END = '# vmfile private network: end';

/** The /etc/hosts block naming these machines. */
export function hostsBlock(peers: readonly { name: string; hostname: string; ip: string }[]): string {
  const lines = peers.map((peer) => `${peer.ip} ${[...new Set([peer.name, peer.hostname])].join(' ')}`);
  return [HOSTS_BLOCK_BEGIN, ...lines, HOSTS_BLOCK_END].join('\n');
}

/** /etc/hosts without vmfile's block (every copy of it), the rest as it was. */
export function withoutHostsBlock(text: string): string {
  const kept: string[] = [];
  let inside = false;
  for (const line of text.split('\n')) {
    if (line === HOSTS_BLOCK_BEGIN) inside = true;
    else if (line === HOSTS_BLOCK_END && inside) inside = false;
    else if (!inside) kept.push(line);
  }
  return kept.join('\n');
}

export function isIPv4(text: string): boolean {
  return IPV4.test(text);
}

/** "10.10.0.11" -> "10.10.0.0/24"; undefined when `ip` is not a dotted-quad IPv4 address. */
export function subnetOf(ip: string): string | undefined {
  if (!isIPv4(ip)) return undefined;
  return `${ip.split('.').slice(0, 3).join('.')}.0/24`;
}

export interface PrivateIpProblem {
  /** The machines the problem is about, in Vmfile order. */
  machines: readonly string[];
  message: string;
}

/**
 * Every problem with the private addresses of one Vmfile's machines, in Vmfile order;
 * empty when they can share the hub. The subnet is the /24 of the first valid address.
 */
export function validatePrivateIps(machines: readonly { name: string; ip: string }[]): PrivateIpProblem[] {
  const problems: PrivateIpProblem[] = [];
  const owners = new Map<string, string[]>();
  let subnet: string | undefined;
  for (const { name, ip } of machines) {
    const problem = addressProblem(ip);
    if (problem !== undefined) {
      problems.push({ machines: [name], message: `machine ${name}: ${problem}` });
      continue;
    }
    const own = subnetOf(ip);
    if (subnet === undefined) {
      subnet = own;
    } else if (own !== subnet) {
      problems.push({
        machines: [name],
        message:
          `machine ${name}: ${ip} is not in ${subnet}, the subnet of the first machine; ` +
          'the private network is one /24 without a router',
      });
    }
    const list = owners.get(ip) ?? [];
    list.push(name);
    owners.set(ip, list);
  }
  for (const [ip, names] of owners) {
    if (names.length < 2) continue;
    const quantifier = names.length === 2 ? 'both' : 'all';
    problems.push({ machines: names, message: `machines ${joinNames(names)} ${quantifier} use ${ip}` });
  }
  return problems;
}

function addressProblem(ip: string): string | undefined {
  if (/^\d+\.\d+\.\d+\.\d+\/\d+$/.test(ip)) {
    return `"${ip}" has a prefix length; give the address alone (the private network is always a /24)`;
  }
  if (!isIPv4(ip)) return `"${ip}" is not an IPv4 address like 10.10.0.11`;
  const octets = ip.split('.').map(Number);
  const [first = 0, , , last = 0] = octets;
  if (first === 0 || first === 127 || first >= 224) return `${ip} is not a usable unicast address`;
  if (subnetOf(ip) === USER_NETWORK_SUBNET) {
    return `${ip} is in ${USER_NETWORK_SUBNET}, which QEMU's user network already uses inside every guest`;
  }
  if (last === 0) return `${ip} is the network address of ${subnetOf(ip) ?? ''}`;
  if (last === 255) return `${ip} is the broadcast address of ${subnetOf(ip) ?? ''}`;
  return undefined;
}

/** "web and db", "web, db and cache". */
function joinNames(names: readonly string[]): string {
  return names.length <= 2 ? names.join(' and ') : `${names.slice(0, -1).join(', ')} and ${names.at(-1) ?? ''}`;
}

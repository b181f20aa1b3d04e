/**
 * `config.vm.network` calls: forwarded ports become `ports`, the first private network
 * with a static IP becomes `network: { ip }`. Vagrant listens on every address by
 * default; vmfile on 127.0.0.1 unless the Vagrantfile names an address, which then
 * needs `public: true` (the Vagrantfile asked for it, so it is written, and said). Pure.
 */
import { isLoopback } from '../vmfile/schema.js';
import { isIPv4 } from '../vmfile/private-ip.js';
import { asHash, showValue, type RecordedCall, type RubyValue } from './record.js';
import { showCall, type Report } from './report.js';
import { entry, object, value, type Entry } from './source.js';

export interface Networks {
  ports: Entry[];
  ip?: { value: string; notes: Entry[] };
}

const PORT_KEYS = new Set(['guest', 'host', 'host_ip', 'protocol', 'auto_correct', 'id']);

export function convertNetworks(calls: readonly RecordedCall[], report: Report): Networks {
  const result: Networks = { ports: [] };
  const dropped: Entry[] = [];
  for (const call of calls) {
    const type = String(call.args[0] ?? '');
    const options = asHash(call.args[1]) ?? {};
    if (type === 'forwarded_port') {
      result.ports.push(...forwardedPort(call, options, report));
    } else if (type === 'private_network' && result.ip === undefined && typeof options['ip'] === 'string' && isIPv4(options['ip']) && options['type'] !== 'dhcp') {
      const notes = Object.entries(options)
        .filter(([key, v]) => key !== 'ip' && !(key === 'netmask' && (v === '255.255.255.0' || v === 24)))
        .map(([key, v]) => report.drop(call, `private_network option ${key}: ${showValue(v)} (vmfile's private network is one /24 it sets up itself)`));
      result.ip = { value: options['ip'], notes };
    } else {
      const why =
        type === 'private_network'
          ? result.ip !== undefined
            ? 'a machine has one private network in vmfile'
            : 'vmfile\'s private network needs a static IPv4 address ("ip")'
          : type === 'public_network'
            ? 'vmfile has no bridged network; forward ports instead'
            : 'not a network type vmfile has';
      dropped.push(report.drop(call, `${showCall(call, 'config')}: ${why}`));
    }
  }
  result.ports.push(...dropped);
  return result;
}

function forwardedPort(call: RecordedCall, options: Record<string, RubyValue>, report: Report): Entry[] {
  const notes: Entry[] = [];
  const guest = options['guest'];
  const host = options['host'];
  if (!isPort(guest) || !isPort(host)) return [report.drop(call, `${showCall(call, 'config')}: guest and host must be port numbers`)];
  if (guest === 22 && options['id'] === 'ssh') return [report.drop(call, `${showCall(call, 'config')}: vmfile forwards SSH itself (vmfile ssh-config, vmssh)`)];
  for (const key of Object.keys(options)) if (!PORT_KEYS.has(key)) notes.push(report.drop(call, `forwarded_port option ${key}: ${showValue(options[key])}`));
  const spec: Entry[] = [entry('guest', value(guest)), entry('host', value(host))];
  const hostIp = options['host_ip'];
  if (typeof hostIp === 'string' && hostIp !== '' && hostIp !== '*') {
    if (!isIPv4(hostIp)) notes.push(report.drop(call, `host_ip ${showValue(hostIp)}: vmfile listens on an IPv4 address; 127.0.0.1 is used`));
    else {
      spec.push(entry('hostIp', value(hostIp)));
      if (!isLoopback(hostIp)) {
        spec.push(entry('public', value(true)));
        notes.push(report.change(call, `host port ${host} listens on ${hostIp} as the Vagrantfile says, so other hosts reach it (public: true)`));
      }
    }
  } else {
    notes.push(report.change(call, `host port ${host} listens on 127.0.0.1 only (Vagrant's default is every address); add hostIp: '0.0.0.0', public: true for that`));
  }
  const protocol = options['protocol'];
  if (protocol === 'udp') spec.push(entry('protocol', value('udp')));
  else if (protocol !== undefined && protocol !== 'tcp') notes.push(report.drop(call, `protocol ${showValue(protocol)}: vmfile forwards tcp or udp; tcp is used`));
  if (options['auto_correct'] === true) spec.push(entry('autoCorrect', value(true)));
  if (options['id'] !== undefined) notes.push(report.drop(call, `forwarded_port id ${showValue(options['id'])}: vmfile names ports by number`));
  return [{ ...entry(undefined, object(spec)), comments: notes.flatMap((n) => n.comments) }];
}

function isPort(v: RubyValue | undefined): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 65535;
}

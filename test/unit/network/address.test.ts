import { describe, expect, it } from 'vitest';
import { macFor } from '../../../src/network/address.js';
import { isIPv4, subnetOf, validatePrivateIps } from '../../../src/vmfile/private-ip.js';

describe('macFor', () => {
  it('is stable, QEMU-prefixed, locally administered unicast', () => {
    const mac = macFor('/home/ana/project', 'web', 1);
    expect(mac).toBe(macFor('/home/ana/project', 'web', 1));
    expect(mac).toMatch(/^52:54:00(:[0-9a-f]{2}){3}$/);
    const first = Number.parseInt(mac.slice(0, 2), 16);
    expect(first & 0x02).toBe(0x02);
    expect(first & 0x01).toBe(0);
  });

  it.each([
    ['another machine', '/home/ana/project', 'db', 1],
    ['another NIC', '/home/ana/project', 'web', 2],
    ['another project', '/home/ana/other', 'web', 1],
    // The separator keeps ("/p", "ab") and ("/pa", "b") apart.
    ['a shifted split between directory and name', '/home/ana/projectw', 'eb', 1],
  ])('differs for %s', (_name, projectDir, machine, nic) => {
    expect(macFor(projectDir, machine, nic)).not.toBe(macFor('/home/ana/project', 'web', 1));
  });
});

describe('subnetOf and isIPv4', () => {
  it.each([
    ['10.10.0.11', '10.10.0.0/24'],
    ['192.168.56.2', '192.168.56.0/24'],
    ['10.10.0', undefined],
    ['10.10.0.256', undefined],
    ['10.10.00.1', undefined],
    ['10.10.0.11/24', undefined],
    [' 10.10.0.11', undefined],
    ['fd00::1', undefined],
  ])('%s -> %s', (ip, subnet) => {
    expect(subnetOf(ip)).toBe(subnet);
    expect(isIPv4(ip)).toBe(subnet !== undefined);
  });
});

describe('validatePrivateIps', () => {
  it.each([
    { name: 'no machines', machines: [], problems: [] },
    {
      name: 'three machines in one /24',
      machines: [
        { name: 'web', ip: '10.10.0.11' },
        { name: 'db', ip: '10.10.0.12' },
        { name: 'cache', ip: '10.10.0.254' },
      ],
      problems: [],
    },
    {
      name: 'an address that is not IPv4',
      machines: [{ name: 'web', ip: '10.10.0' }],
      problems: [{ machines: ['web'], message: 'machine web: "10.10.0" is not an IPv4 address like 10.10.0.11' }],
    },
    {
      name: 'an address with a prefix length',
      machines: [{ name: 'web', ip: '10.10.0.11/24' }],
      problems: [
        {
          machines: ['web'],
          message: 'machine web: "10.10.0.11/24" has a prefix length; give the address alone (the private network is always a /24)',
        },
      ],
    },
    {
      name: 'the network and broadcast addresses',
      machines: [
        { name: 'web', ip: '10.10.0.0' },
        { name: 'db', ip: '10.10.0.255' },
      ],
      problems: [
        { machines: ['web'], message: 'machine web: 10.10.0.0 is the network address of 10.10.0.0/24' },
        { machines: ['db'], message: 'machine db: 10.10.0.255 is the broadcast address of 10.10.0.0/24' },
      ],
    },
    {
      name: 'loopback and multicast addresses',
      machines: [
        { name: 'web', ip: '127.0.0.2' },
        { name: 'db', ip: '224.0.0.5' },
      ],
      problems: [
        { machines: ['web'], message: 'machine web: 127.0.0.2 is not a usable unicast address' },
        { machines: ['db'], message: 'machine db: 224.0.0.5 is not a usable unicast address' },
      ],
    },
    {
      name: "QEMU's user network",
      machines: [{ name: 'web', ip: '10.0.2.20' }],
      problems: [
        {
          machines: ['web'],
          message: "machine web: 10.0.2.20 is in 10.0.2.0/24, which QEMU's user network already uses inside every guest",
        },
      ],
    },
    {
      name: 'duplicates, named together',
      machines: [
        { name: 'web', ip: '10.10.0.11' },
        { name: 'db', ip: '10.10.0.11' },
        { name: 'a', ip: '10.10.0.20' },
        { name: 'b', ip: '10.10.0.20' },
        { name: 'c', ip: '10.10.0.20' },
      ],
      problems: [
        { machines: ['web', 'db'], message: 'machines web and db both use 10.10.0.11' },
        { machines: ['a', 'b', 'c'], message: 'machines a, b and c all use 10.10.0.20' },
      ],
    },
    {
      name: 'a machine outside the first valid subnet',
      machines: [
        { name: 'bad', ip: 'x' },
        { name: 'web', ip: '10.10.0.11' },
        { name: 'db', ip: '10.10.1.12' },
      ],
      problems: [
        { machines: ['bad'], message: 'machine bad: "x" is not an IPv4 address like 10.10.0.11' },
        {
          machines: ['db'],
          message: 'machine db: 10.10.1.12 is not in 10.10.0.0/24, the subnet of the first machine; the private network is one /24 without a router',
        },
      ],
    },
  ])('$name', ({ machines, problems }) => {
    expect(validatePrivateIps(machines)).toEqual(problems);
  });
});

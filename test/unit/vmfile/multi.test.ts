import { describe, expect, test } from 'vitest';
import { ConfigError } from '../../../src/errors.js';
import { parseVmfile } from '../../../src/vmfile/config.js';

const VMFILE = '/p/Vmfile.ts';

function problems(value: unknown): string[] {
  try {
    parseVmfile(value, VMFILE, '/p');
  } catch (error) {
    if (error instanceof ConfigError) return error.message.split('\n').slice(1).map((line) => line.replace(/^\s+- /, ''));
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('multi-machine Vmfiles', () => {
  test('each machine inherits defaults and overrides any field', () => {
    const project = parseVmfile(
      { defaults: { box: 'debian-12', memory: '1GiB' }, machines: { web: { memory: '2GiB', primary: true }, db: { autostart: false } } },
      VMFILE,
      '/p',
    );
    expect(project.machines.map((m) => [m.name, m.memory / 1024 ** 3, m.hostname, m.primary, m.autostart])).toEqual([
      ['web', 2, 'web', true, true],
      ['db', 1, 'db', false, false],
    ]);
  });

  test.each([
    [
      'a problem in a machine is reported under its name, one from defaults under defaults',
      { defaults: { box: 'debian-12', cpus: 0 }, machines: { web: { memory: 'lots' }, db: {} } },
      ['defaults.cpus: a machine needs at least 1 CPU', 'machines.web.memory: expected a size like "2GiB" or "512MiB", got "lots"'],
    ],
    ['an unknown key in a machine', { machines: { web: { box: 'd', colour: 'red' } } }, ['machines.web: unknown key "colour"']],
    ['machine-level keys beside machines', { box: 'd', machines: { web: {} } }, ['unknown key "box"']],
    ['no machines', { machines: {} }, ['machines: name at least one machine']],
    ['a bad machine name', { machines: { Web_1: { box: 'd' } } }, ['machines.Web_1: machine names are lower-case letters, digits and "-", starting with a letter']],
    [
      'duplicate private IPs',
      { defaults: { box: 'd' }, machines: { web: { network: { ip: '10.10.0.11' } }, db: { network: { ip: '10.10.0.11' } } } },
      ['machines.db.network.ip: machines web and db both use 10.10.0.11'],
    ],
    [
      'private IPs in different subnets',
      { defaults: { box: 'd' }, machines: { web: { network: { ip: '10.10.0.11' } }, db: { network: { ip: '10.20.0.12' } } } },
      ['machines.db.network.ip: machine db: 10.20.0.12 is not in 10.10.0.0/24, the subnet of the first machine; the private network is one /24 without a router'],
    ],
    [
      'one host port forwarded by two machines',
      { defaults: { box: 'd' }, machines: { web: { ports: [{ guest: 80, host: 8080 }] }, db: { ports: [{ guest: 5432, host: 8080 }] } } },
      ['machines.db.ports: host port 8080/tcp is also forwarded by machine web'],
    ],
    ['two primaries', { defaults: { box: 'd', primary: true }, machines: { web: {}, db: {} } }, ['primary: only one machine can be primary, not web and db']],
    ['a port out of range', { box: 'd', ports: [{ guest: 0, host: 70000 }] }, ['ports[0].guest: guest ports are 1-65535', 'ports[0].host: host ports are 1-65535']],
    ['a bad host IP', { box: 'd', ports: [{ guest: 80, host: 8080, hostIp: 'localhost' }] }, ['ports[0].hostIp: expected an IPv4 address like "127.0.0.1" or "0.0.0.0"']],
    ['a relative guest folder', { box: 'd', folders: [{ host: '.', guest: 'vmfile' }] }, ['folders[0].guest: guest path must be absolute']],
  ])('%s', (_name, value, expected) => {
    expect(problems(value)).toEqual(expected);
  });

  test('forwarded ports default to tcp on 127.0.0.1 without auto-correction', () => {
    const [machine] = parseVmfile({ box: 'd', ports: [{ guest: 80, host: 8080 }] }, VMFILE, '/p').machines;
    expect(machine?.ports).toEqual([{ guest: 80, host: 8080, hostIp: '127.0.0.1', protocol: 'tcp', autoCorrect: false }]);
  });

  test('folders resolve from the Vmfile directory; [] syncs nothing', () => {
    expect(parseVmfile({ box: 'd', folders: [{ host: 'src', guest: '/src', type: 'rsync' }] }, VMFILE, '/p').machines[0]?.folders).toEqual([
      { host: '/p/src', guest: '/src', type: 'rsync', readonly: false, exclude: [], gitignore: false },
    ]);
    expect(parseVmfile({ box: 'd', folders: [] }, VMFILE, '/p').machines[0]?.folders).toEqual([]);
  });
});

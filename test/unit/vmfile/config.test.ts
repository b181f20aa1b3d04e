import { describe, expect, test } from 'vitest';
import { ConfigError } from '../../../src/errors.js';
import { DEFAULT_MACHINE, hostnameFrom, parseVmfile, type MachineConfig } from '../../../src/vmfile/config.js';
import { normalizeStep, type ProvisionStep } from '../../../src/vmfile/steps.js';

const GiB = 1024 ** 3;
const VMFILE = '/projects/web/Vmfile.ts';

function machineOf(value: unknown, projectDir = '/projects/web'): MachineConfig {
  const project = parseVmfile(value, VMFILE, projectDir);
  expect(project.machines).toHaveLength(1);
  const machine = project.machines[0];
  if (machine === undefined) throw new Error('no machine');
  return machine;
}

function configError(value: unknown): ConfigError {
  try {
    parseVmfile(value, VMFILE, '/projects/web');
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected parseVmfile to throw a ConfigError');
}

/** The "  - path: message" lines of a ConfigError, without the bullet. */
function problemLines(error: ConfigError): string[] {
  return error.message
    .split('\n')
    .slice(1)
    .map((line) => line.replace(/^ {2}- /, ''));
}

describe('parseVmfile defaults', () => {
  test('a Vmfile naming only a box gets every default', () => {
    const project = parseVmfile({ box: 'debian-12' }, VMFILE, '/projects/web');
    expect(project).toEqual({
      dir: '/projects/web',
      vmfilePath: VMFILE,
      loadedFiles: [VMFILE],
      machines: [
        {
          name: DEFAULT_MACHINE,
          box: { name: 'debian-12' },
          cpus: 2,
          memory: GiB,
          disk: 10 * GiB,
          hostname: 'web',
          accel: 'auto',
          bootTimeout: 300,
          warmStart: 'auto',
          provider: { type: 'qemu' },
          provision: [],
          ports: [],
          // The project directory is synced at /vmfile unless the Vmfile says otherwise.
          folders: [{ host: '/projects/web', guest: '/vmfile', type: 'rsync', readonly: false, exclude: [], gitignore: true }],
          primary: false,
          autostart: true,
        },
      ],
    });
  });

  test('the hostname comes from the project directory name, made valid', () => {
    expect(machineOf({ box: 'debian-12' }, '/home/me/My Project_2').hostname).toBe('my-project-2');
  });

  test('an explicit hostname wins over the directory name', () => {
    expect(machineOf({ box: 'debian-12', hostname: 'db1' }, '/home/me/My Project').hostname).toBe('db1');
  });

  test('warmStart is "auto" unless the Vmfile says true or false, in defaults or per machine', () => {
    expect(machineOf({ box: 'debian-12', warmStart: true }).warmStart).toBe(true);
    expect(machineOf({ box: 'debian-12', warmStart: false }).warmStart).toBe(false);
    const project = parseVmfile({ defaults: { box: 'debian-12', warmStart: false }, machines: { a: {}, b: { warmStart: true } } }, VMFILE, '/p');
    expect(project.machines.map((machine) => machine.warmStart)).toEqual([false, true]);
  });

  test('sizes are converted to bytes', () => {
    const machine = machineOf({ box: 'debian-12', memory: '512MiB', disk: '20G', cpus: 4 });
    expect([machine.memory, machine.disk, machine.cpus]).toEqual([512 * 1024 ** 2, 20 * GiB, 4]);
  });

  test.each([
    ['a string', 'debian-12', { name: 'debian-12' }],
    ['an object without version', { name: 'debian-12' }, { name: 'debian-12' }],
    ['an object with version', { name: 'debian-12', version: '2026.11.10' }, { name: 'debian-12', version: '2026.11.10' }],
    ['a Vagrant-style name', 'hashicorp/bionic64', { name: 'hashicorp/bionic64' }],
    [
      'a catalog url and a version range',
      { name: 'org/name', url: 'https://boxes.example/org/name.json', version: '>= 1.2, < 2' },
      {
        name: 'org/name',
        constraints: [
          { operator: '>=', version: '1.2' },
          { operator: '<', version: '2' },
        ],
        url: 'https://boxes.example/org/name.json',
      },
    ],
    [
      'a box file url with its checksum (hex in lower case)',
      { name: 'cloud', url: 'http://127.0.0.1:8080/cloud.qcow2', checksum: `sha256:${'AB'.repeat(32)}` },
      { name: 'cloud', url: 'http://127.0.0.1:8080/cloud.qcow2', checksum: `sha256:${'ab'.repeat(32)}` },
    ],
    ['"= V" is a constraint that only V meets', { name: 'd', version: '= 1.0' }, { name: 'd', constraints: [{ operator: '=', version: '1.0' }] }],
    ['a recipe box with its own snapshot mirror', { name: 'debian-12', snapshotMirror: 'http://snapshot.example.org' }, { name: 'debian-12', snapshotMirror: 'http://snapshot.example.org' }],
  ])('box as %s', (_label, box, expected) => {
    const machine = machineOf({ box });
    expect(machine.box).toStrictEqual(expected);
  });

  test('provision steps are normalised: run "once", privileged, empty env and args', () => {
    const machine = machineOf({
      box: 'debian-12',
      provision: [
        { shell: 'echo hi' },
        { name: 'setup', script: 'setup.sh' },
        { file: { source: 'conf', destination: '/etc/app.conf' }, run: 'always' },
      ],
    });
    expect(machine.provision).toEqual<ProvisionStep[]>([
      { kind: 'shell', id: 'step-1', name: '1', run: 'once', inline: 'echo hi', env: {}, privileged: true },
      { kind: 'script', id: 'setup', name: 'setup', run: 'once', script: 'setup.sh', args: [], env: {}, privileged: true },
      { kind: 'file', id: 'step-3', name: '3', run: 'always', source: 'conf', destination: '/etc/app.conf' },
    ]);
  });
});

describe('hostnameFrom', () => {
  test.each([
    ['web', 'web'],
    ['My Project', 'my-project'],
    ['--weird__name--', 'weird-name'],
    ['日本', 'vmfile'],
    ['', 'vmfile'],
    [`${'a'.repeat(62)}-b`, 'a'.repeat(62)],
    ['a'.repeat(80), 'a'.repeat(63)],
  ])('%j -> %j', (name, hostname) => {
    expect(hostnameFrom(name)).toBe(hostname);
  });
});

describe('normalizeStep', () => {
  test.each([
    [{ run: 'once' as const, shell: 'true' }, 0, 'step-1', '1'],
    [{ run: 'once' as const, shell: 'true' }, 4, 'step-5', '5'],
    [{ run: 'once' as const, shell: 'true', name: 'motd' }, 4, 'motd', 'motd'],
  ])('%j at index %d has id %s and name %s', (step, index, id, name) => {
    const normalized = normalizeStep(step, index);
    expect([normalized.id, normalized.name]).toEqual([id, name]);
  });

  test('a script step keeps its args, env and privilege', () => {
    expect(normalizeStep({ run: 'never', script: 'a.sh', args: ['-x'], env: { A: '1' }, privileged: false }, 0)).toEqual({
      kind: 'script',
      id: 'step-1',
      name: '1',
      run: 'never',
      script: 'a.sh',
      args: ['-x'],
      env: { A: '1' },
      privileged: false,
    });
  });
});

describe('parseVmfile errors', () => {
  test.each<[string, unknown, string[]]>([
    ['zero CPUs', { box: 'd', cpus: 0 }, ['cpus: a machine needs at least 1 CPU']],
    ['negative CPUs', { box: 'd', cpus: -2 }, ['cpus: a machine needs at least 1 CPU']],
    ['too many CPUs', { box: 'd', cpus: 257 }, ['cpus: more than 256 CPUs is not supported']],
    ['CPUs as a string', { box: 'd', cpus: '2' }, ['cpus: expected a whole number of CPUs']],
    ['fractional CPUs', { box: 'd', cpus: 1.5 }, ['cpus: expected a whole number of CPUs']],
    ['one unknown key', { box: 'd', cpu: 2 }, ['unknown key "cpu"']],
    ['two unknown keys', { box: 'd', bogus: 1, other: 2 }, ['unknown keys "bogus", "other"']],
    ['an unknown key in a step', { box: 'd', provision: [{ shell: 'x', sudo: true }] }, ['provision[0]: unknown key "sudo"']],
    ['an unknown key in the box', { box: { name: 'd', tag: 'x' } }, ['box: unknown key "tag"']],
    ['a bad run policy', { box: 'd', provision: [{ shell: 'x' }, { shell: 'y', run: 'sometimes' }] }, ['provision[1].run: expected "once", "always" or "never"']],
    [
      'a step of two kinds',
      { box: 'd', provision: [{ shell: 'x', script: 'a.sh' }] },
      ['provision[0]: a step has exactly one of "shell", "script", "file" or "ansible", this one has "shell" and "script"'],
    ],
    [
      'a step of no kind',
      { box: 'd', provision: [{ name: 'empty' }] },
      ['provision[0]: a step needs one of "shell" (inline script), "script" (path to a script), "file" (upload) or "ansible" (playbook)'],
    ],
    ['args on a shell step', { box: 'd', provision: [{ shell: 'x', args: ['a'] }] }, ['provision[0].args: "args" only applies to a "script" step']],
    ['an empty shell script', { box: 'd', provision: [{ shell: '' }] }, ['provision[0].shell: shell script must not be empty']],
    [
      'env and privileged on a file step',
      { box: 'd', provision: [{ file: { source: 'a', destination: '/etc/a' }, env: { A: 'b' }, privileged: true }] },
      ['provision[0].env: "env" does not apply to a "file" step', 'provision[0].privileged: "privileged" does not apply to a "file" step'],
    ],
    [
      'a relative file destination',
      { box: 'd', provision: [{ file: { source: 'a', destination: 'etc/a' } }] },
      ['provision[0].file.destination: destination must be an absolute path in the guest'],
    ],
    ['an empty file source', { box: 'd', provision: [{ file: { source: '', destination: '/a' } }] }, ['provision[0].file.source: source must not be empty']],
    ['a non-string env value', { box: 'd', provision: [{ shell: 'x', env: { PORT: 80 } }] }, ['provision[0].env.PORT: environment values must be strings']],
    ['a non-string script argument', { box: 'd', provision: [{ script: 'a.sh', args: [1] }] }, ['provision[0].args[0]: script arguments must be strings']],
    ['memory that is not a size', { box: 'd', memory: 'lots' }, ['memory: expected a size like "2GiB" or "512MiB", got "lots"']],
    ['memory as a number', { box: 'd', memory: 1024 }, ['memory: expected a size like "2GiB" or "512MiB"']],
    ['a negative disk', { box: 'd', disk: '-1GiB' }, ['disk: expected a size like "2GiB" or "512MiB", got "-1GiB"']],
    ['a zero disk', { box: 'd', disk: '0' }, ['disk: disk "0" is out of range: must be between 1GiB and 64TiB']],
    ['too little memory', { box: 'd', memory: '64MiB' }, ['memory: memory "64MiB" is out of range: must be between 128MiB and 4TiB']],
    ['absurd memory', { box: 'd', memory: '100TiB' }, ['memory: memory "100TiB" is out of range: must be between 128MiB and 4TiB']],
    // Beyond a safe integer, so parseSize gives up before the range check (see the report).
    ['memory beyond any range', { box: 'd', memory: '9999TiB' }, ['memory: memory "9999TiB" is out of range: must be between 128MiB and 4TiB']],
    ['no box', {}, ['box: expected a box name like "debian-12" or { name: "debian-12", version: "..." }']],
    ['a bad box name', { box: 'Debian 12!' }, ['box: box names are letters, digits, ".", "_" and "-", starting with a letter or digit, optionally as "org/name", without the word VAGRANTSLASH']],
    ['a bad box name in an object', { box: { name: '../etc' } }, ['box.name: box names are letters, digits, ".", "_" and "-", starting with a letter or digit, optionally as "org/name", without the word VAGRANTSLASH']],
    ['a box name with two slashes', { box: 'a/b/c' }, ['box: box names are letters, digits, ".", "_" and "-", starting with a letter or digit, optionally as "org/name", without the word VAGRANTSLASH']],
    ['a box name that spells the store\'s slash', { box: 'org-VAGRANTSLASH-name' }, ['box: box names are letters, digits, ".", "_" and "-", starting with a letter or digit, optionally as "org/name", without the word VAGRANTSLASH']],
    ['a file:// box url', { box: { name: 'd', url: 'file:///etc/passwd' } }, ['box.url: expected an http:// or https:// URL, not file:']],
    ['a box url with a space', { box: { name: 'd', url: 'http://x/a b.box' } }, ['box.url: expected a URL without spaces or control characters (percent-encode them)']],
    ['a relative box url', { box: { name: 'd', url: 'boxes/d.box' } }, ['box.url: expected an absolute http:// or https:// URL']],
    ['a file:// snapshot mirror', { box: { name: 'd', snapshotMirror: 'file:///srv' } }, ['box.snapshotMirror: expected an http:// or https:// URL, not file:']],
    ['a checksum without a url', { box: { name: 'd', checksum: `sha256:${'a'.repeat(64)}` } }, ['box.checksum: a checksum applies to a box downloaded from "url"; add the url']],
    ['an md5 checksum', { box: { name: 'd', url: 'http://x/d.box', checksum: `md5:${'a'.repeat(32)}` } }, ['box.checksum: expected "sha256:" and 64 hex digits']],
    [
      'a version that is neither a version nor a constraint',
      { box: { name: 'd', version: '>= ../1' } },
      ['box.version: expected a version like "2026.11.1", or constraints like ">= 1.2", "< 2", "~> 1.2", "!= 1.3" separated by commas'],
    ],
    ['a bad hostname', { box: 'd', hostname: '-web' }, ['hostname: a hostname is 1-63 letters, digits and "-", not starting or ending with "-"']],
    ['a bad accel', { box: 'd', accel: 'fast' }, ['accel: expected "auto", "kvm" or "tcg"']],
    ['a zero boot timeout', { box: 'd', bootTimeout: 0 }, ['bootTimeout: bootTimeout must be more than 0 seconds']],
    ['a boot timeout over a day', { box: 'd', bootTimeout: 86401 }, ['bootTimeout: bootTimeout is at most 86400 seconds']],
    ['not an object', 'debian-12', ['(top level): Invalid input: expected object, received string']],
    ['two steps with one name', { box: 'd', provision: [{ name: 'a', shell: 'x' }, { name: 'a', shell: 'y' }] }, ['provision: two steps are named "a"']],
  ])('%s', (_label, value, lines) => {
    const error = configError(value);
    expect(error.exitCode).toBe(78);
    expect(error.message.split('\n')[0]).toBe('Vmfile.ts is invalid:');
    expect(problemLines(error)).toEqual(lines);
  });

  test('every problem is reported at once, each on its own line with its path', () => {
    const error = configError({
      box: 'd',
      cpus: 0,
      memory: '1 lot',
      colour: 'blue',
      provision: [{ shell: 'x', run: 'daily' }, { file: { source: 'a', destination: 'rel' } }],
    });
    expect(problemLines(error).sort()).toEqual(
      [
        'unknown key "colour"',
        'cpus: a machine needs at least 1 CPU',
        'memory: expected a size like "2GiB" or "512MiB", got "1 lot"',
        'provision[0].run: expected "once", "always" or "never"',
        'provision[1].file.destination: destination must be an absolute path in the guest',
      ].sort(),
    );
    expect(error.hint).toBe('fix the fields above, then check with: vmfile validate');
  });

  test('a single problem gets a singular hint', () => {
    expect(configError({ box: 'd', cpus: 0 }).hint).toBe('fix the field above, then check with: vmfile validate');
  });

  test('an unnamed step whose automatic name is taken says so', () => {
    const lines = problemLines(configError({ box: 'd', provision: [{ name: 'step-2', shell: 'x' }, { shell: 'y' }] }));
    expect(lines).toEqual(['provision: step 2 is unnamed, and its automatic name "step-2" is taken by a named step']);
  });

  test('a bad environment variable name is reported with its path', () => {
    const lines = problemLines(configError({ box: 'd', provision: [{ shell: 'x', env: { '1A': 'b', 'A-B': 'c', OK: 'd' } }] }));
    expect(lines.map((line) => line.split(': ')[0])).toEqual(['provision[0].env.1A', 'provision[0].env.A-B']);
  });

  // zod wraps record-key failures in an "invalid_key" issue; the schema's own message is shown.
  test('a bad environment variable name says what a valid name is', () => {
    expect(problemLines(configError({ box: 'd', provision: [{ shell: 'x', env: { '1A': 'b' } }] }))).toEqual([
      'provision[0].env.1A: environment variable names are letters, digits and _, not starting with a digit',
    ]);
  });

  // The duplicate-name check is part of the schema, so it is reported with everything else.
  test('a duplicate step name is reported together with other problems', () => {
    const lines = problemLines(configError({ box: 'd', cpus: 0, provision: [{ name: 'a', shell: 'x' }, { name: 'a', shell: 'y' }] }));
    expect(lines).toEqual(['cpus: a machine needs at least 1 CPU', 'provision: two steps are named "a"']);
  });
});

describe('provider', () => {
  test('libvirt defaults to the local system daemon and the pool named "default"', () => {
    expect(machineOf({ box: 'debian-12', provider: { type: 'libvirt' } }).provider).toEqual({ type: 'libvirt', uri: 'qemu:///system', pool: 'default' });
  });

  test.each(['qemu:///system', 'qemu:///session', 'qemu+ssh://root@lab.example.org/system', 'qemu+ssh://vm@10.0.0.5:2222/system?keyfile=/home/me/.ssh/lab', 'qemu+ssh://[::1]:22/system'])('accepts the URI %s', (uri) => {
    expect(machineOf({ box: 'debian-12', provider: { type: 'libvirt', uri } }).provider).toMatchObject({ uri });
  });

  test.each([
    'qemu+ssh://host/system; rm -rf /',
    'qemu+tcp://host/system',
    'qemu://host/system',
    'qemu+ssh://-oProxyCommand=x/system',
    'qemu+ssh://host/system?command=$(id)',
    'xen:///system',
  ])('refuses the URI %j, naming the field', (uri) => {
    expect(problemLines(configError({ box: 'debian-12', provider: { type: 'libvirt', uri } }))[0]).toMatch(/^provider\.uri: expected "qemu:\/\/\/system"/);
  });

  test('an unknown provider type or key is refused', () => {
    expect(problemLines(configError({ box: 'debian-12', provider: { type: 'virtualbox' } }))[0]).toMatch(/^provider/);
    expect(problemLines(configError({ box: 'debian-12', provider: { type: 'libvirt', host: 'x' } }))[0]).toMatch(/^provider/);
    expect(problemLines(configError({ box: 'debian-12', provider: { type: 'libvirt', pool: '../x' } }))[0]).toMatch(/^provider\.pool/);
  });

  describe('hosts', () => {
    const local = 'qemu:///system';
    const lab = 'qemu+ssh://root@lab/system';
    const multi = (machines: Record<string, object>, provider: object) => parseVmfile({ defaults: { box: 'debian-12', provider }, machines }, VMFILE, '/projects/web').machines;

    test("'spread' places the machines round-robin over the hosts, in the Vmfile's order, each with its pool", () => {
      const machines = multi({ a: {}, b: {}, c: {} }, { type: 'libvirt', hosts: [local, { uri: lab, pool: 'fast' }], pool: 'vms' });
      expect(machines.map((machine) => [machine.name, machine.provider])).toEqual([
        ['a', { type: 'libvirt', uri: local, pool: 'vms' }],
        ['b', { type: 'libvirt', uri: lab, pool: 'fast' }],
        ['c', { type: 'libvirt', uri: local, pool: 'vms' }],
      ]);
    });

    test('a machine that names its own provider is not placed, and takes no turn', () => {
      const machines = multi({ a: {}, pinned: { provider: { type: 'libvirt', uri: lab } }, b: {}, mine: { provider: { type: 'qemu' } } }, { type: 'libvirt', hosts: [local, lab] });
      expect(Object.fromEntries(machines.map((machine) => [machine.name, machine.provider]))).toEqual({
        a: { type: 'libvirt', uri: local, pool: 'default' },
        pinned: { type: 'libvirt', uri: lab, pool: 'default' },
        b: { type: 'libvirt', uri: lab, pool: 'default' },
        mine: { type: 'qemu' },
      });
    });

    test('uri and hosts together, an empty hosts list or a bad host are refused', () => {
      expect(problemLines(configError({ box: 'debian-12', provider: { type: 'libvirt', uri: local, hosts: [lab] } }))).toContain('provider.hosts: give either uri or hosts, not both');
      expect(problemLines(configError({ box: 'debian-12', provider: { type: 'libvirt', hosts: [] } }))[0]).toMatch(/^provider\.hosts: name at least one host/);
      expect(problemLines(configError({ box: 'debian-12', provider: { type: 'libvirt', hosts: ['qemu+ssh://x/system;id'] } }))[0]).toMatch(/^provider\.hosts\[0\]: expected/);
    });

    test('one private network over machines on several hosts is refused, naming where each would be', () => {
      let error: unknown;
      try {
        parseVmfile({ defaults: { box: 'debian-12', provider: { type: 'libvirt', hosts: [local, lab] } }, machines: { a: { network: { ip: '10.0.0.2' } }, b: { network: { ip: '10.0.0.3' } } } }, VMFILE, '/projects/web');
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).message).toContain(`network: the private network would span several hosts (a on ${local}, b on ${lab})`);
    });
  });
});

/**
 * The recorder's record -> Vmfile mapping, on records written here the way
 * vagrant/recorder.rb writes them: what each Vagrant setting becomes, what is listed as
 * a gap, and that the result is a Vmfile vmfile accepts (parseVmfile).
 */
import { describe, expect, test } from 'vitest';
import { parseVmfile } from '../../../src/vmfile/config.js';
import { convertRecord, type ConvertOptions } from '../../../src/vagrant/convert.js';
import type { RecordedCall, RubyValue, VagrantRecord } from '../../../src/vagrant/record.js';
import { summarize } from '../../../src/vagrant/report.js';
import { plain } from '../../../src/vagrant/source.js';

let line = 0;
/** One recorded call; `blocks` are the calls made on each block parameter. */
function call(target: string, method: string, args: RubyValue[], ...blocks: RecordedCall[][]): RecordedCall {
  line += 1;
  return { target: target === '' ? [] : target.split('.'), method, args, at: `Vagrantfile:${line}`, ...(blocks.length === 0 ? {} : { blocks }) };
}
const record = (...events: RecordedCall[]): VagrantRecord => ({ recorder: 1, configs: [{ version: '2', events }], env: [], plugins: [] });
const options: ConvertOptions = { vagrantfile: 'Vagrantfile', fromDir: '/src/p', toDir: '/src/p', boxServer: 'https://vagrantcloud.com' };

function accepted(data: unknown) {
  return parseVmfile(data, '/src/p/Vmfile.ts', '/src/p');
}

describe('convertRecord', () => {
  test('a single machine: box, provider resources, ports, network, folders, steps', () => {
    const converted = convertRecord(
      record(
        call('vm', 'box=', ['debian/bookworm64']),
        call('vm', 'box_version=', ['>= 12.0']),
        call('vm', 'hostname=', ['app.example.test']),
        call('vm', 'network', ['forwarded_port', { guest: 80, host: 8080, auto_correct: true }]),
        call('vm', 'network', ['forwarded_port', { guest: 53, host: 5353, protocol: 'udp', host_ip: '127.0.0.1' }]),
        call('vm', 'network', ['private_network', { ip: '192.168.56.10' }]),
        call('vm', 'provider', ['virtualbox'], [call('', 'memory=', [2048]), call('', 'cpus=', [1])]),
        call('vm', 'provider', ['libvirt'], [call('', 'memory=', [1024]), call('', 'cpus=', [2])]),
        call('vm', 'synced_folder', ['./src', '/srv/app', { type: 'rsync', rsync__exclude: ['.git/', 'node_modules/'] }]),
        call('vm', 'provision', ['shell', { inline: 'apt-get update', run: 'always' }]),
        call('vm', 'provision', ['setup', { type: 'shell', path: 'scripts/setup.sh', args: ['--fast', 3], env: { LANG: 'C.UTF-8', N: 2 }, privileged: false }]),
        call('vm', 'provision', ['file', { source: 'conf/app.ini', destination: '/tmp/app.ini' }]),
        call('vm', 'provision', ['ansible'], [call('', 'playbook=', ['site.yml']), call('', 'extra_vars=', [{ role: 'web', ports: [80] }])]),
      ),
      options,
    );
    const data = plain(converted.root);
    expect(data).toEqual({
      box: { name: 'debian/bookworm64', version: '>= 12.0', url: 'https://vagrantcloud.com/debian/bookworm64' },
      cpus: 2,
      memory: '1GiB',
      hostname: 'app',
      network: { ip: '192.168.56.10' },
      ports: [
        { guest: 80, host: 8080, autoCorrect: true },
        { guest: 53, host: 5353, hostIp: '127.0.0.1', protocol: 'udp' },
      ],
      folders: [
        { host: '.', guest: '/vagrant', type: 'rsync' },
        { host: 'src', guest: '/srv/app', type: 'rsync', exclude: ['.git/', 'node_modules/'] },
      ],
      provision: [
        { shell: 'apt-get update', run: 'always', cache: false },
        { name: 'setup', script: 'scripts/setup.sh', args: ['--fast', '3'], env: { LANG: 'C.UTF-8', N: '2' }, privileged: false },
        { file: { source: 'conf/app.ini', destination: '/tmp/app.ini' } },
        { ansible: { playbook: 'site.yml', extraVars: { role: 'web', ports: [80] } } },
      ],
    });
    expect(accepted(data).machines).toHaveLength(1);
    expect(converted.gaps.map((gap) => gap.what)).toEqual(
      expect.arrayContaining([
        'hostname app.example.test: vmfile sets a host name without a domain, app',
        'the virtualbox block says memory 2048 MB; the libvirt block\'s 1024 is used',
        'the virtualbox block says cpus 1; the libvirt block\'s 2 is used',
      ]),
    );
    expect(converted.gaps.every((gap) => gap.kind === 'changed')).toBe(true);
  });

  test('define blocks: machines with the common calls first, renamed names, primary, autostart, shared settings in defaults', () => {
    const converted = convertRecord(
      record(
        call('vm', 'box=', ['generic/debian12']),
        call('vm', 'provision', ['shell', { inline: 'echo common' }]),
        call('vm', 'define', ['web_1', { primary: true }], [call('vm', 'network', ['private_network', { ip: '10.20.0.11' }]), call('vm', 'provision', ['shell', { inline: 'echo web' }])]),
        call('vm', 'define', ['db', { autostart: false }], [
          call('vm', 'network', ['private_network', { ip: '10.20.0.12' }]),
          call('vm', 'provision', ['ansible'], [call('', 'playbook=', ['db.yml']), call('', 'groups=', [{ web: ['web_1'], dbs: ['db'] }]), call('', 'limit=', ['all'])]),
        ]),
      ),
      options,
    );
    const data = plain(converted.root) as { defaults: Record<string, unknown>; machines: Record<string, Record<string, unknown>> };
    expect(Object.keys(data.machines)).toEqual(['web-1', 'db']);
    expect(data.defaults['box']).toEqual({ name: 'generic/debian12', url: 'https://vagrantcloud.com/generic/debian12' });
    expect(data.machines['web-1']).toMatchObject({ primary: true, provision: [{ shell: 'echo common' }, { shell: 'echo web' }] });
    expect(data.machines['db']).toMatchObject({ autostart: false, provision: [{ shell: 'echo common' }, { ansible: { playbook: 'db.yml', groups: { web: ['web-1'], dbs: ['db'] }, limit: 'all' } }] });
    expect(accepted(data).machines.map((m) => m.name)).toEqual(['web-1', 'db']);
    expect(converted.gaps).toContainEqual(expect.objectContaining({ machine: 'web-1', kind: 'changed', what: expect.stringContaining('"web_1" is named web-1') }));
  });

  test('what vmfile lacks is listed where it was, once per setting in the summary', () => {
    const converted = convertRecord(
      record(
        call('vm', 'box=', ['ubuntu/jammy64']),
        call('vm', 'provider', ['virtualbox'], [call('', 'memory=', [512]), call('', 'customize', [['modifyvm', 'id', '--vram', '16']]), call('', 'gui=', [false])]),
        call('vm', 'network', ['public_network', { bridge: 'en0' }]),
        call('vm', 'provision', ['puppet', { manifest_file: 'site.pp' }]),
        call('ssh', 'forward_agent=', [true]),
        call('vm', 'synced_folder', ['.', '/vagrant', { type: 'nfs', mount_options: ['actimeo=1'] }]),
        call('vm', 'define', ['a'], []),
        call('vm', 'define', ['b'], []),
      ),
      options,
    );
    const dropped = converted.gaps.filter((gap) => gap.kind === 'dropped');
    expect(dropped.map((gap) => `${gap.machine} ${gap.at}: ${gap.what}`)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^a Vagrantfile:\d+: vb\.customize \["modifyvm","id","--vram","16"\]: a virtualbox setting/),
        expect.stringMatching(/^a Vagrantfile:\d+: vb\.gui = false/),
        expect.stringMatching(/^b Vagrantfile:\d+: config\.vm\.network "public_network", \{"bridge":"en0"\}: vmfile has no bridged network/),
        expect.stringMatching(/^a Vagrantfile:\d+: config\.vm\.provision "puppet".*the puppet provisioner is not one vmfile has/),
        expect.stringMatching(/^b Vagrantfile:\d+: config\.ssh\.forward_agent = true: no vmfile equivalent/),
        expect.stringMatching(/^a Vagrantfile:\d+: synced_folder option mount_options/),
      ]),
    );
    const data = plain(converted.root) as { defaults: Record<string, unknown> };
    expect(data.defaults['folders']).toEqual([{ host: '.', guest: '/vagrant', type: 'virtiofs' }]);
    expect(data.defaults['memory']).toBe('512MiB');
    accepted(data);
    const summary = summarize(converted.gaps, 'Vagrantfile');
    expect(summary).toMatch(/^6 settings of Vagrantfile did not convert/);
    expect(summary).toMatch(/ \(machines a, b\): vb\.customize/);
  });

  test('paths are rewritten relative to the Vmfile, and an ansible_local playbook is found through its folder', () => {
    const converted = convertRecord(
      record(
        call('vm', 'box=', ['debian-12']),
        call('vm', 'synced_folder', ['ops', '/opt/ops', { type: 'rsync' }]),
        call('vm', 'provision', ['shell', { path: 'bin/setup.sh' }]),
        call('vm', 'provision', ['ansible_local', { playbook: 'play.yml', provisioning_path: '/opt/ops' }]),
      ),
      { ...options, fromDir: '/src/p/vagrant', toDir: '/src/p' },
    );
    expect(plain(converted.root)).toMatchObject({
      box: 'debian-12',
      folders: [{ host: 'vagrant', guest: '/vagrant' }, { host: 'vagrant/ops', guest: '/opt/ops' }],
      provision: [{ script: 'vagrant/bin/setup.sh' }, { ansible: { playbook: 'vagrant/ops/play.yml' } }],
    });
  });

  test.each([
    ['no box', [], 'the Vagrantfile names no box'],
    ['a box name vmfile refuses', [call('vm', 'box=', ['bad box'])], 'is not a box name vmfile accepts'],
  ])('%s: debian-12 stands in, and it is said', (_, events, said) => {
    const converted = convertRecord(record(...events), options);
    expect(plain(converted.root)).toMatchObject({ box: 'debian-12' });
    expect(converted.gaps[0]?.what).toContain(said);
  });

  test('a disabled default folder, a forwarded SSH port and a shell path URL', () => {
    const converted = convertRecord(
      record(
        call('vm', 'box=', ['debian-12']),
        call('vm', 'synced_folder', ['.', '/vagrant', { disabled: true }]),
        call('vm', 'network', ['forwarded_port', { guest: 22, host: 2222, id: 'ssh' }]),
        call('vm', 'provision', ['shell', { path: 'https://get.example.com/install.sh' }]),
      ),
      options,
    );
    expect(plain(converted.root)).toEqual({ box: 'debian-12', folders: [], ports: [], provision: [] });
    expect(converted.gaps.map((gap) => gap.what)).toEqual([expect.stringContaining('vmfile forwards SSH itself'), expect.stringContaining('not from a URL')]);
  });
});

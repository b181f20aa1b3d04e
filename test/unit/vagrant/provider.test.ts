/** CPUs and memory from each provider's way of saying them, and which provider wins. */
import { describe, expect, test } from 'vitest';
import { megabytes, providerResources, sizeText } from '../../../src/vagrant/provider.js';
import type { RecordedCall, RubyValue } from '../../../src/vagrant/record.js';
import { Report } from '../../../src/vagrant/report.js';

const set = (method: string, args: RubyValue[], target: string[] = []): RecordedCall => ({ target, method, args, at: 'Vagrantfile:1' });
const provider = (name: string, ...settings: RecordedCall[]): RecordedCall => ({ target: ['vm'], method: 'provider', args: [name], at: 'Vagrantfile:1', blocks: [settings] });

describe('providerResources', () => {
  test.each([
    ['virtualbox', [set('memory=', ['2048']), set('cpus=', [4])], 4, 2048],
    ['virtualbox customize', [set('customize', [['modifyvm', 'id', '--memory', '1536']]), set('customize', [['modifyvm', 'id', '--cpus', 3]])], 3, 1536],
    ['libvirt', [set('memory=', [1024]), set('cpus=', [2])], 2, 1024],
    ['vmware_desktop', [set('[]=', ['memsize', '4096'], ['vmx']), set('[]=', ['numvcpus', '2'], ['vmx'])], 2, 4096],
    ['qemu', [set('memory=', ['4G']), set('smp=', ['cpus=2,sockets=1,cores=2,threads=1'])], 2, 4096],
    ['hyperv', [set('memory=', [768]), set('cpus=', [1])], 1, 768],
  ])('%s', (name, settings, cpus, memory) => {
    const resources = providerResources([provider(name.split(' ')[0] ?? '', ...settings)], new Report([], 'Vagrantfile'));
    expect(resources.cpus?.value).toBe(cpus);
    expect(resources.memoryMiB?.value).toBe(memory);
    expect(resources.notes).toEqual([]);
  });

  test('qemu, then libvirt, then the first in the file; the difference is said', () => {
    const gaps = new Report([], 'Vagrantfile');
    const resources = providerResources([provider('virtualbox', set('memory=', [2048])), provider('libvirt', set('memory=', [1024])), provider('qemu', set('memory=', ['512M']))], gaps);
    expect(resources.memoryMiB).toEqual({ value: 512, from: 'qemu' });
    expect(gaps.gaps.map((gap) => gap.what)).toEqual([
      "the virtualbox block says memory 2048 MB; the qemu block's 512 is used",
      "the libvirt block says memory 1024 MB; the qemu block's 512 is used",
    ]);
  });

  test.each([
    [1024, '1GiB'],
    [1536, '1536MiB'],
  ])('%i MiB is %s', (mib, text) => expect(sizeText(mib)).toBe(text));

  test.each([['2048', 2048], ['2G', 2048], ['512M', 512], [0, undefined], ['lots', undefined], [1.5, undefined]] as const)('megabytes(%j) = %j', (input, expected) => {
    expect(megabytes(input)).toBe(expected);
  });
});

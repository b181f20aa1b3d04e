import { describe, expect, test } from 'vitest';
import { chooseAccel, kvmVerdict, type HostInfo } from '../../../src/qemu/host.js';

const INTEL = 'processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu vme de pse tsc msr pae vmx smx est\n';
const AMD = 'processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu vme svm extapic\n';
const NESTED = 'processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu vme de pse tsc msr pae hypervisor\n';
// "vmx" elsewhere than in the flags line must not count.
const VMX_ONLY_IN_BUGS = 'processor\t: 0\nflags\t\t: fpu hypervisor\nvmx flags\t: vnmi\nbugs\t\t: vmx_spectre\n';

const NO_DEVICE = '/dev/kvm is missing or not read-writable';
const NO_VMX = '/dev/kvm exists but the CPU shows no vmx/svm (nested or para-virtual KVM cannot run ordinary guests)';

describe('kvmVerdict', () => {
  test.each([
    ['no /dev/kvm, vmx CPU', false, INTEL, false, NO_DEVICE],
    ['no /dev/kvm, no cpuinfo', false, '', false, NO_DEVICE],
    ['/dev/kvm, no vmx/svm', true, NESTED, false, NO_VMX],
    ['/dev/kvm, unreadable cpuinfo', true, '', false, NO_VMX],
    ['/dev/kvm, vmx only outside the flags line', true, VMX_ONLY_IN_BUGS, false, NO_VMX],
    ['/dev/kvm, Intel vmx', true, INTEL, true, 'KVM available'],
    ['/dev/kvm, AMD svm', true, AMD, true, 'KVM available'],
  ])('%s', (_label, device, cpuinfo, usable, reason) => {
    expect(kvmVerdict(device, cpuinfo)).toEqual({ kvmUsable: usable, kvmReason: reason });
  });
});

function host(kvmUsable: boolean): HostInfo {
  return { cpus: 4, memory: 8 * 1024 ** 3, kvmUsable, kvmReason: kvmUsable ? 'KVM available' : NO_DEVICE };
}

const TCG_NOTICE = `KVM not usable (${NO_DEVICE}); using software emulation (TCG), which is slower`;
const FORCED_KVM_NOTICE = `using KVM as requested, although ${NO_DEVICE}`;

describe('chooseAccel', () => {
  test.each([
    // requested, VMFILE_ACCEL, KVM usable -> choice
    ['auto', undefined, true, { accel: 'kvm' }],
    ['auto', undefined, false, { accel: 'tcg', notice: TCG_NOTICE }],
    ['tcg', undefined, true, { accel: 'tcg' }],
    ['tcg', undefined, false, { accel: 'tcg' }],
    ['kvm', undefined, true, { accel: 'kvm' }],
    ['kvm', undefined, false, { accel: 'kvm', notice: FORCED_KVM_NOTICE }],
    // The environment beats the Vmfile.
    ['kvm', 'tcg', true, { accel: 'tcg' }],
    ['auto', 'tcg', true, { accel: 'tcg' }],
    ['tcg', 'kvm', true, { accel: 'kvm' }],
    ['tcg', 'kvm', false, { accel: 'kvm', notice: FORCED_KVM_NOTICE }],
    // Anything else in the environment is ignored.
    ['tcg', 'auto', true, { accel: 'tcg' }],
    ['auto', '', false, { accel: 'tcg', notice: TCG_NOTICE }],
    ['kvm', 'KVM', true, { accel: 'kvm' }],
    ['tcg', 'qemu', true, { accel: 'tcg' }],
  ] as const)('Vmfile %s, VMFILE_ACCEL=%s, KVM usable %s', (requested, env, usable, expected) => {
    expect(chooseAccel(requested, env, host(usable))).toStrictEqual(expected);
  });
});

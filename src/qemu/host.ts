/**
 * What the host can do, probed once per command and passed to the pure parts.
 *
 * /dev/kvm existing (even opening it and creating a VM) does not mean KVM works: on
 * nested "PVM" hosts a stock kernel hangs at "Booting from ROM" under -accel kvm. The
 * rule that held on every host measured (shared/DESIGN.md): KVM only when /dev/kvm is
 * read-writable AND the CPU advertises vmx or svm; otherwise TCG.
 */
import { constants } from 'node:fs';
import { access, readFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { run } from '../exec.js';
import { QEMU_BINARY } from './process.js';

export type Accel = 'kvm' | 'tcg';

export interface HostInfo {
  cpus: number;
  /** Bytes. */
  memory: number;
  kvmUsable: boolean;
  /** Why KVM is or is not usable, for the notice. */
  kvmReason: string;
}

export async function probeHost(): Promise<HostInfo> {
  const [kvmDevice, cpuinfo] = await Promise.all([
    access('/dev/kvm', constants.R_OK | constants.W_OK).then(
      () => true,
      () => false,
    ),
    readFile('/proc/cpuinfo', 'utf8').catch(() => ''),
  ]);
  return { cpus: cpus().length, memory: totalmem(), ...kvmVerdict(kvmDevice, cpuinfo) };
}

export function kvmVerdict(kvmDevice: boolean, cpuinfo: string): { kvmUsable: boolean; kvmReason: string } {
  if (!kvmDevice) return { kvmUsable: false, kvmReason: '/dev/kvm is missing or not read-writable' };
  const virtualization = /^flags\s*:.*\b(vmx|svm)\b/m.test(cpuinfo);
  if (!virtualization) return { kvmUsable: false, kvmReason: '/dev/kvm exists but the CPU shows no vmx/svm (nested or para-virtual KVM cannot run ordinary guests)' };
  return { kvmUsable: true, kvmReason: 'KVM available' };
}

export interface AccelChoice {
  accel: Accel;
  /** One line to show the user when the choice is not the obvious one. */
  notice?: string;
}

/** VMFILE_ACCEL beats the Vmfile's `accel`, which beats detection. */
export function chooseAccel(requested: 'auto' | 'kvm' | 'tcg', envOverride: string | undefined, host: HostInfo): AccelChoice {
  const override = envOverride === 'kvm' || envOverride === 'tcg' ? envOverride : undefined;
  const wanted = override ?? requested;
  if (wanted === 'kvm') {
    return host.kvmUsable ? { accel: 'kvm' } : { accel: 'kvm', notice: `using KVM as requested, although ${host.kvmReason}` };
  }
  if (wanted === 'tcg') return { accel: 'tcg' };
  if (host.kvmUsable) return { accel: 'kvm' };
  return { accel: 'tcg', notice: `KVM not usable (${host.kvmReason}); using software emulation (TCG), which is slower` };
}

/** QEMU's version line ("QEMU emulator version 7.2.22 (…)"): saved machine state is only loaded by the QEMU that saved it. */
export async function qemuVersion(): Promise<string> {
  const { stdout } = await run(QEMU_BINARY, ['--version'], { purpose: 'read the QEMU version' });
  return stdout.split('\n')[0]?.trim() ?? stdout;
}

/**
 * A machine against the host that will run it, before anything is created or uploaded:
 * CPUs, memory, accelerator, firmware and live folders, each problem said with the
 * field to change. Pure: every driver probes its own host (HostFacts) and hands it here,
 * so a machine on a libvirt host is measured against that host, never this one.
 *
 * /dev/kvm existing does not mean KVM works (shared/DESIGN.md): the facts say which
 * accelerators work there, and "auto" takes KVM only then.
 */
import { ConfigError, type VmfileError } from '../errors.js';
import { formatSize } from '../vmfile/size.js';
import type { Accel, DriverFeatures, Firmware, HostFacts, HostPlan, MachineRequest } from './features.js';

/** VMFILE_ACCEL beats the Vmfile's `accel`, which beats detection. An explicit KVM is honoured, with a word, where it seems not to work. */
export function chooseAccel(requested: 'auto' | Accel, envOverride: string | undefined, host: Pick<HostFacts, 'accels' | 'kvmReason'>): HostPlan {
  const override = envOverride === 'kvm' || envOverride === 'tcg' ? envOverride : undefined;
  const wanted = override ?? requested;
  const kvm = host.accels.includes('kvm');
  if (wanted === 'kvm') return kvm ? { accel: 'kvm' } : { accel: 'kvm', notice: `using KVM as requested, although ${host.kvmReason}` };
  if (wanted === 'tcg') return { accel: 'tcg' };
  if (kvm) return { accel: 'kvm' };
  return { accel: 'tcg', notice: `KVM not usable (${host.kvmReason}); using software emulation (TCG), which is slower` };
}

export interface HostCheck {
  plan: HostPlan;
  /** Every problem, each naming the machine and the field; empty when the machine fits. */
  problems: VmfileError[];
}

export function checkMachine(request: MachineRequest, host: HostFacts, features: DriverFeatures, envAccel: string | undefined): HostCheck {
  const { machine } = request;
  const problems: VmfileError[] = [];
  if (request.cpus > host.cpus) {
    problems.push(new ConfigError(`machine "${machine}": cpus is ${request.cpus} but ${host.name} has ${host.cpus}`, { hint: `set cpus to ${host.cpus} or fewer in the Vmfile` }));
  }
  if (request.memory > host.memory) {
    problems.push(new ConfigError(`machine "${machine}": memory is ${formatSize(request.memory)} but ${host.name} has ${formatSize(host.memory)} in total`, { hint: 'lower memory in the Vmfile' }));
  }
  const firmware = firmwareProblem(machine, request.firmware, host, features);
  if (firmware !== undefined) problems.push(firmware);
  for (const folder of request.liveFolders) {
    if (host.liveFolders.includes(folder.type)) continue;
    const why = features.liveFolders.includes(folder.type) ? `${host.name} cannot serve one now (virtiofs needs /usr/lib/qemu/virtiofsd, run as root)` : `${host.name} does not attach ${folder.type} folders`;
    problems.push(new ConfigError(`machine "${machine}": folder ${folder.guest} is ${folder.type}, but ${why}`, { hint: `give the folder type: 'rsync'${features.liveFolders.length > 0 ? `, or ${features.liveFolders.filter((t) => t !== folder.type).map((t) => `'${t}'`).join(' or ')}` : ''}` }));
  }
  return { plan: chooseAccel(request.accel, envAccel, host), problems };
}

/** A box that boots itself under `firmware` on a host whose driver does not run that firmware. */
export function firmwareProblem(machine: string, firmware: Firmware | undefined, host: Pick<HostFacts, 'name'>, features: Pick<DriverFeatures, 'firmware'>): ConfigError | undefined {
  if (firmware === undefined || features.firmware.includes(firmware)) return undefined;
  return new ConfigError(`machine "${machine}": it boots with its box's own ${firmware.toUpperCase()} firmware, which ${host.name} does not run`, {
    hint: features.firmware.length === 0 ? 'use a box with a kernel (such as debian-12), or run the machine on vmfile\'s own QEMU (no provider)' : `set firmware: '${features.firmware[0] ?? 'bios'}'`,
  });
}

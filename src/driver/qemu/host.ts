/**
 * This host, as the QEMU driver runs machines on it: probed once per command (the
 * answers do not change while vmfile runs) and checked against each machine.
 */
import { requireCommands } from '../../exec.js';
import type { VmfileError } from '../../errors.js';
import { hostHasVirtiofsd } from '../../folders/sync.js';
import { probeHost, qemuVersion } from '../../qemu/host.js';
import { QEMU_BINARY } from '../../qemu/process.js';
import type { DriverFeatures, HostFacts, LiveFolderType, MachineRequest } from '../features.js';
import { checkMachine, type HostCheck } from '../host-check.js';
import { missingFirmware } from './boot.js';

export const QEMU_FEATURES: DriverFeatures = {
  warmStart: true,
  liveFolders: ['virtiofs', '9p'],
  firmware: ['bios', 'uefi'],
  guestAgent: true,
  heldSsh: true,
  memorySnapshots: true,
  migration: false,
  localProcess: true,
};

let probed: Promise<HostFacts> | undefined;
let version: Promise<string> | undefined;

export function localHost(): Promise<HostFacts> {
  probed ??= (async () => {
    const [host, virtiofsd] = await Promise.all([probeHost(), hostHasVirtiofsd()]);
    const liveFolders: LiveFolderType[] = virtiofsd ? ['virtiofs', '9p'] : ['9p'];
    return { name: 'this host', cpus: host.cpus, memory: host.memory, accels: host.kvmUsable ? ['kvm', 'tcg'] : ['tcg'], kvmReason: host.kvmReason, arches: ['x86_64'], liveFolders };
  })();
  return probed;
}

export function localHypervisor(): Promise<string> {
  version ??= qemuVersion();
  return version;
}

export async function checkLocal(request: MachineRequest, envAccel: string | undefined): Promise<HostCheck> {
  const problems: VmfileError[] = [];
  await requireCommands([QEMU_BINARY, 'qemu-img'], `machine "${request.machine}"`).catch((error: unknown) => problems.push(error as VmfileError));
  const checked = checkMachine(request, await localHost(), QEMU_FEATURES, envAccel);
  if (request.firmware === 'uefi') {
    const missing = await missingFirmware();
    if (missing !== undefined) problems.push(missing);
  }
  return { plan: checked.plan, problems: [...problems, ...checked.problems] };
}

/**
 * A libvirt host as the driver sees it: what `virsh nodeinfo` and `virsh capabilities`
 * say of its CPUs, memory, accelerators and architectures, asked once per command and
 * URI. A machine there is checked against that host, never against this workstation.
 *
 * KVM counts only where libvirt offers a kvm domain AND the host CPU shows vmx or svm:
 * libvirt offers kvm wherever /dev/kvm opens, which a nested para-virtual host's does
 * while it cannot run ordinary guests (shared/DESIGN.md).
 */
import { ConfigError } from '../../errors.js';
import { requireCommands } from '../../exec.js';
import type { VmfileError } from '../../errors.js';
import { describeHost, parseLibvirtUri } from '../../vmfile/libvirt-uri.js';
import type { Arch, DriverFeatures, HostFacts, MachineRequest } from '../features.js';
import { checkMachine, type HostCheck } from '../host-check.js';
import { checkPool } from './storage.js';
import { virsh, type LibvirtHost } from './virsh.js';

export const LIBVIRT_FEATURES: DriverFeatures = {
  warmStart: false,
  liveFolders: [],
  firmware: [],
  guestAgent: false,
  heldSsh: false,
  memorySnapshots: true,
  migration: false,
  localProcess: false,
};

const ARCHES: readonly Arch[] = ['x86_64', 'aarch64'];

/** HostFacts from what virsh printed. Pure. */
export function parseHostFacts(uri: string, nodeinfo: string, capabilities: string): HostFacts {
  const field = (label: string) => new RegExp(`^${label}:\\s+(\\d+)`, 'm').exec(nodeinfo)?.[1];
  const cpus = Number(field('CPU\\(s\\)') ?? Number.NaN);
  const memoryKiB = Number(field('Memory size') ?? Number.NaN);
  if (!Number.isInteger(cpus) || !Number.isInteger(memoryKiB)) {
    throw new ConfigError(`libvirt host ${uri}: virsh nodeinfo did not say how many CPUs and how much memory it has`, { hint: `look at it: virsh -c ${uri} nodeinfo` });
  }
  const hostCpu = /<host>[\s\S]*?<cpu>([\s\S]*?)<\/cpu>/.exec(capabilities)?.[1] ?? '';
  const virtualization = /<feature\s+name=(['"])(vmx|svm)\1/.test(hostCpu);
  const guests = [...capabilities.matchAll(/<guest>([\s\S]*?)<\/guest>/g)].map((match) => match[1] ?? '');
  const arches = new Set<Arch>();
  let kvmDomain = false;
  for (const guest of guests) {
    if (!/<os_type>hvm<\/os_type>/.test(guest)) continue;
    const arch = /<arch\s+name=(['"])([^'"]+)\1/.exec(guest)?.[2];
    if (arch === undefined || !ARCHES.includes(arch as Arch)) continue;
    arches.add(arch as Arch);
    if (arch === 'x86_64' && /<domain\s+type=(['"])kvm\1/.test(guest)) kvmDomain = true;
  }
  const kvm = kvmDomain && virtualization;
  const kvmReason = kvm ? 'KVM available' : !kvmDomain ? 'libvirt offers no KVM domain there' : 'libvirt offers KVM but the CPU shows no vmx/svm (nested or para-virtual KVM cannot run ordinary guests)';
  return { name: `libvirt host ${describeHost(uri)}`, cpus, memory: memoryKiB * 1024, accels: kvm ? ['kvm', 'tcg'] : ['tcg'], kvmReason, arches: [...arches], liveFolders: [] };
}

const probed = new Map<string, Promise<HostFacts>>();

export function libvirtHostFacts(host: LibvirtHost): Promise<HostFacts> {
  let facts = probed.get(host.uri);
  if (facts === undefined) {
    facts = (async () => {
      const nodeinfo = await virsh(host, ['nodeinfo'], { purpose: 'ask the host for its CPUs and memory', timeoutMs: 30_000 });
      const capabilities = await virsh(host, ['capabilities'], { purpose: 'ask the host what it can run', timeoutMs: 30_000 });
      return parseHostFacts(host.uri, nodeinfo, capabilities);
    })();
    probed.set(host.uri, facts);
    facts.catch(() => probed.delete(host.uri));
  }
  return facts;
}

/** The programs this workstation needs, the pool there, and the machine against that host. */
export async function checkLibvirt(host: LibvirtHost, request: MachineRequest, envAccel: string | undefined): Promise<HostCheck> {
  const problems: VmfileError[] = [];
  const local = parseLibvirtUri(host.uri).local;
  await requireCommands(['virsh', 'genisoimage', ...(local ? [] : ['ssh'])], `machine "${request.machine}" (libvirt)`).catch((error: unknown) => problems.push(error as VmfileError));
  if (problems.length > 0) return { plan: { accel: 'tcg' }, problems };
  await checkPool(host).catch((error: unknown) => problems.push(error as VmfileError));
  const checked = checkMachine(request, await libvirtHostFacts(host), LIBVIRT_FEATURES, envAccel);
  return { plan: checked.plan, problems: [...problems, ...checked.problems] };
}

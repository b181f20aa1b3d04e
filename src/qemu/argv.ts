/**
 * The QEMU command line for a machine, built as an argv array by a pure function:
 * everything it needs (paths, ports, the accelerator) is passed in.
 */
import type { PortForward } from '../store/machine.js';
import type { Accel } from './host.js';

/** The chardev QEMU serves the guest agent's virtio-serial port through. */
export const AGENT_CHARDEV = 'qga0';

export type { PortForward };

export type BootSpec =
  | { type: 'kernel'; kernel: string; initrd?: string; cmdline: string }
  | { type: 'firmware'; firmware: 'bios' }
  /** OVMF: its code read-only, and the machine's own variable store. */
  | { type: 'firmware'; firmware: 'uefi'; code: string; vars: string };

export interface LaunchSpec {
  name: string;
  accel: Accel;
  cpus: number;
  /** Bytes. */
  memory: number;
  boot: BootSpec;
  overlay: string;
  /** Directory holding the cloud-init NoCloud files, exposed read-only as a FAT drive labelled cidata. */
  seedDir: string;
  forwards: readonly PortForward[];
  qmpSocket: string;
  serialLog: string;
  pidFile: string;
  /** Start from this internal snapshot's saved memory instead of booting (resume). */
  loadvm?: string;
  /** Wait for a migration stream (QMP migrate-incoming) instead of booting: a warm start. */
  incoming?: boolean;
  /**
   * QEMU's VM generation ID device with this GUID. A guest restored with a GUID other
   * than the one it was saved with is told so, and Linux reseeds its RNG at once.
   */
  generation?: string;
  /** The QEMU guest agent's channel (a virtio-serial port), served on this Unix socket. */
  agentSocket?: string;
  /** QEMU's gdbstub on this Unix socket (a warm start writes the guest's boot ID through it). */
  gdbSocket?: string;
  /** virtiofs shares: each served by a virtiofsd listening on `socket`. */
  virtiofs?: readonly { tag: string; socket: string }[];
  /** Second NIC on the Vmfile's private network: a stream to vmfile's switch (src/network/hub.ts). */
  privateNetwork?: { socket: string; mac: string };
  /** 9p shares served by QEMU itself. */
  ninep?: readonly { tag: string; path: string; readonly: boolean }[];
}

/** A q35 slot no other device takes (QEMU fills slots from 1; 0x1f holds the ICH9 functions). */
export const AGENT_PCI_SLOT = '0x1e';

/** QEMU option values use "," as a separator; a literal comma is written ",,". */
export function escapeOption(value: string): string {
  return value.replaceAll(',', ',,');
}

export function hostForward(forward: PortForward): string {
  return `hostfwd=${forward.protocol}:${forward.hostIp}:${forward.hostPort}-:${forward.guestPort}`;
}

/**
 * TCG's translation cache in MiB: a quarter of guest memory, at least 64 and at most
 * 256. QEMU's own default (1 GiB on a 64-bit host) made an idle 512 MiB guest's QEMU
 * twice the guest's size; bench/tcg-memory.sh measured what smaller caches save and
 * cost (docs/design.md, "TCG's translation cache").
 */
export function tcgCacheMiB(memory: number): number {
  return Math.min(256, Math.max(64, Math.floor(memory / 1024 ** 2 / 4)));
}

export function qemuArgs(spec: LaunchSpec): string[] {
  const memoryMiB = Math.max(1, Math.floor(spec.memory / 1024 ** 2));
  const args = [
    '-name', `${escapeOption(spec.name)},process=vmfile-${escapeOption(spec.name)}`,
    '-machine', 'q35',
    ...(spec.accel === 'kvm' ? ['-accel', 'kvm', '-cpu', 'host'] : ['-accel', `tcg,tb-size=${tcgCacheMiB(spec.memory)}`]),
    '-smp', String(spec.cpus),
    '-m', `${memoryMiB}M`,
    // vhost-user devices (virtiofs) need guest memory the daemon can map.
    ...((spec.virtiofs?.length ?? 0) > 0 ? ['-object', `memory-backend-memfd,id=mem,size=${memoryMiB}M,share=on`, '-numa', 'node,memdev=mem'] : []),
    ...(spec.virtiofs ?? []).flatMap((share, index) => [
      '-chardev', `socket,id=fs${index},path=${escapeOption(share.socket)}`,
      '-device', `vhost-user-fs-pci,chardev=fs${index},tag=${share.tag}`,
    ]),
    // mapped-xattr: the guest's owners and modes live in extended attributes, so a guest
    // (or its root) cannot make a setuid or root-owned file on the host, as 'none' allows
    // when QEMU runs as root.
    ...(spec.ninep ?? []).flatMap((share) => [
      '-virtfs', `local,path=${escapeOption(share.path)},mount_tag=${share.tag},security_model=mapped-xattr${share.readonly ? ',readonly=on' : ''}`,
    ]),
    // A guest reboot ends QEMU, so "running" always means "the machine we booted".
    '-no-reboot',
    ...bootArgs(spec.boot),
    '-drive', `file=${escapeOption(spec.overlay)},if=virtio,format=qcow2,discard=unmap`,
    // After the disk: savevm writes memory into the first snapshot-capable drive.
    ...firmwareDrives(spec.boot),
    // vvfat serves the seed directory without extra tools; read-only, so online
    // snapshots (which skip read-only drives) work with it attached.
    '-drive', `file=fat:${escapeOption(spec.seedDir)},file.label=cidata,if=virtio,format=raw,readonly=on`,
    '-netdev', ['user', 'id=n0', ...spec.forwards.map(hostForward)].join(','),
    '-device', 'virtio-net-pci,netdev=n0',
    ...(spec.privateNetwork === undefined
      ? []
      : [
          '-netdev', `stream,id=priv,server=off,addr.type=unix,addr.path=${escapeOption(spec.privateNetwork.socket)}`,
          '-device', `virtio-net-pci,netdev=priv,mac=${spec.privateNetwork.mac}`,
        ]),
    // Entropy from the host: sshd and cloud-init wait for it under TCG otherwise.
    '-device', 'virtio-rng-pci',
    ...(spec.generation === undefined ? [] : ['-device', `vmgenid,guid=${spec.generation}`]),
    // The guest agent's port, at a fixed PCI slot: a device without one would take the
    // next free slot and could move the devices after it, which saved memory (snapshots,
    // suspend, warm states) records by slot. Memory saved without it loads, the port
    // then silent.
    ...(spec.agentSocket === undefined
      ? []
      : [
          '-chardev', `socket,id=${AGENT_CHARDEV},path=${escapeOption(spec.agentSocket)},server=on,wait=off`,
          '-device', `virtio-serial-pci,id=qga-serial,addr=${AGENT_PCI_SLOT}`,
          '-device', `virtserialport,bus=qga-serial.0,chardev=${AGENT_CHARDEV},name=org.qemu.guest_agent.0`,
        ]),
    '-qmp', `unix:${escapeOption(spec.qmpSocket)},server=on,wait=off`,
    ...(spec.gdbSocket === undefined ? [] : ['-gdb', `unix:${escapeOption(spec.gdbSocket)},server=on,wait=off`]),
    '-serial', `file:${spec.serialLog}`,
    '-display', 'none',
    '-daemonize',
    '-pidfile', spec.pidFile,
    ...(spec.loadvm === undefined ? [] : ['-loadvm', spec.loadvm]),
    ...(spec.incoming === true ? ['-incoming', 'defer'] : []),
  ];
  return args;
}

function bootArgs(boot: BootSpec): string[] {
  if (boot.type === 'kernel') {
    return ['-kernel', boot.kernel, ...(boot.initrd === undefined ? [] : ['-initrd', boot.initrd]), '-append', boot.cmdline];
  }
  return [];
}

function firmwareDrives(boot: BootSpec): string[] {
  if (boot.type !== 'firmware' || boot.firmware !== 'uefi') return [];
  return [
    '-drive', `if=pflash,unit=0,format=raw,readonly=on,file=${escapeOption(boot.code)}`,
    '-drive', `if=pflash,unit=1,format=qcow2,file=${escapeOption(boot.vars)}`,
  ];
}

/**
 * What a driver can do, and what the host it runs machines on offers, as data. The
 * layers above ask these (in the spirit of Lima's DriverFeatures and Vagrant's
 * `capability?`) and never which driver a machine has: a new driver declares its own,
 * and every use-case adapts without a change.
 *
 * Features are fixed for a driver; host facts are probed from the host that will run
 * the machine (this one, or a libvirt host over SSH), once per command.
 */
import type { Accel } from '../qemu/host.js';

export type { Accel };

/** Guest architectures, as QEMU names them. */
export type Arch = 'x86_64' | 'aarch64';

/** Folder types a driver attaches as devices; rsync folders need no driver. */
export type LiveFolderType = 'virtiofs' | '9p';

export type Firmware = 'bios' | 'uefi';

export interface DriverFeatures {
  /**
   * Saves a paused machine as a warm state (saveState), starts a new machine from one
   * (StartSpec.fromWarmState) and gives it a boot ID of its own (StartSpec.bootId).
   */
  warmStart: boolean;
  /** Folder types it can attach; whether the host can serve one now is HostFacts.liveFolders. */
  liveFolders: readonly LiveFolderType[];
  /** Firmwares it runs a box's own boot loader under. A box with a kernel boots on every driver. */
  firmware: readonly Firmware[];
  /** Reaches the QEMU guest agent in the guest (setGuestClock, execInGuest), over a channel only vmfile can open. */
  guestAgent: boolean;
  /** Starts a machine with its SSH port chosen but not forwarded (StartSpec.holdSsh), and opens it later (openSsh). */
  heldSsh: boolean;
  /** A snapshot of a running machine holds its memory, and a restore brings it back running. */
  memorySnapshots: boolean;
  /** Moves a running machine to another host. */
  migration: boolean;
  /**
   * Its machines run as a process on this host that is known from their files alone
   * (a pid file and /proc): vmssh's quick path may skip everything else.
   */
  localProcess: boolean;
}

/** The host a driver runs a machine on, as probed. */
export interface HostFacts {
  /** For people: "this host", "libvirt host root@lab". */
  name: string;
  cpus: number;
  /** Bytes. */
  memory: number;
  /** Accelerators that really work there; tcg always. */
  accels: readonly Accel[];
  /** Why KVM is or is not usable there, for the notice. */
  kvmReason: string;
  /** Guest architectures it can run. */
  arches: readonly Arch[];
  /** Live folder types it can serve now (virtiofs needs virtiofsd, run as root). */
  liveFolders: readonly LiveFolderType[];
}

/** What a machine asks of the host that will run it: checked before anything is made. */
export interface MachineRequest {
  machine: string;
  cpus: number;
  /** Bytes. */
  memory: number;
  accel: 'auto' | Accel;
  /** The firmware the Vmfile names for a box that boots itself, if any. */
  firmware?: Firmware | undefined;
  /** Live folders the machine will have (rsync folders need nothing of the driver). */
  liveFolders: readonly { guest: string; type: LiveFolderType }[];
}

/** What the host check decided: the accelerator, and one line to show when it is not the obvious one. */
export interface HostPlan {
  accel: Accel;
  notice?: string;
}

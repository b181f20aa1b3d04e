/** What a driver is handed to start a machine, and what it answers. */
import type { InstalledBox } from '../box/store.js';
import type { PlannedFolder } from '../folders/plan.js';
import type { BootIdLocation, PortForward } from '../store/machine.js';
import type { PortSpec } from '../vmfile/schema.js';
import type { MachineBoot } from '../vmfile/boot.js';
import type { Accel } from './features.js';

export interface StartSpec {
  /** The machine's name, for messages and the process title. */
  machine: string;
  box: InstalledBox;
  /** The box's kernel, or its own boot loader under BIOS or UEFI (vmfile/boot.ts). Fixed for a suspended machine. */
  boot: MachineBoot;
  accel: Accel;
  cpus: number;
  /** Bytes. */
  memory: number;
  ports: readonly PortSpec[];
  /** Folders the driver attaches as devices (virtiofs, 9p); rsync folders are ignored. */
  folders: readonly PlannedFolder[];
  /**
   * The Vmfile's private network, named by the project's directory, and this NIC's MAC.
   * Each driver joins it its own way (vmfile's switch, a libvirt network on the host).
   * Without a project the NIC is on no network: a warm state's generic machine.
   */
  privateNetwork?: { project?: string; mac: string };
  /** Continue from the memory saved by suspend() instead of booting. */
  fromSavedState: boolean;
  /**
   * Start from a warm state's saved memory (the file saveState() wrote) instead of
   * booting; the disk must have been created over that state's disk (create's `base`).
   */
  fromWarmState?: string;
  /**
   * With fromWarmState: where that memory holds the guest kernel's boot ID. A new one is
   * written there before the guest runs, so no two machines from one state share it.
   */
  bootId?: BootIdLocation;
  /**
   * The VM generation ID the guest sees (a GUID). A guest started from saved state
   * with another ID than it was saved with is told so and reseeds its RNG; kept for
   * the machine's life, so its own suspend and resume are not taken for a clone.
   */
  generation?: string;
  /** Told when a taken host port was moved (autoCorrect). */
  onPortMoved?: (from: number, to: number, spec: PortSpec) => void;
  /**
   * With features.heldSsh: the SSH port is chosen (Started.sshPort) but not forwarded
   * until openSsh(), so nobody can reach the guest's sshd before vmfile has made the
   * machine its own (a Vagrant box's published login).
   */
  holdSsh?: boolean;
  /**
   * Told as soon as the machine's process runs, before any saved memory is loaded: the
   * caller records the ports, so a vmfile killed during the load leaves a record that
   * says where the machine is.
   */
  onLaunched?: (started: Started) => Promise<void>;
  /**
   * With fromWarmState: told once the saved memory is loaded (and the boot ID written),
   * while the guest is still paused. When it resolves, the guest is continued; from then
   * on its disk goes on from that memory, which must never be loaded into it again.
   */
  beforeContinue?: () => Promise<void>;
}

export interface Started {
  pid: number;
  /** Host port (on 127.0.0.1) forwarded to the guest's port 22. */
  sshPort: number;
  /** The forwards as bound: autoCorrect may have moved some. */
  forwards: PortForward[];
}

export interface StopOptions {
  /** Ask the guest first (ACPI power button) and wait up to timeoutMs; false goes straight to force. */
  graceful: boolean;
  timeoutMs: number;
  progress?: (text: string) => void;
}

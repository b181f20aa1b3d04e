/**
 * The driver contract: everything that depends on how a machine is run (QEMU driven
 * directly, driver/qemu/; a libvirt host, local or over SSH, driver/libvirt/) behind
 * one interface, in the spirit of Lima's pkg/driver and Vagrant's Provider. Use-cases
 * above it never see argv, pids, QMP, qemu-img or virsh, and never ask which driver a
 * machine has: they ask its features (features.ts). Every driver is made in one place,
 * driver/registry.ts.
 *
 * A driver is bound to one machine's directory and owns its own file names there. It
 * knows nothing of the Vmfile or of SSH: it is handed plain specs and answers with plain
 * facts. It never writes the machine record (machine.json): the start procedure
 * (lifecycle/) is its one writer.
 *
 * Promises every driver keeps, method by method, are written on the interface.
 */
import type { InstalledBox } from '../box/store.js';
import { UserError } from '../errors.js';
import type { Phase } from '../ui/reporter.js';
import type { Placement, PortForward } from '../store/machine.js';
import type { SshHop } from '../ssh/hop.js';
import type { Accel, DriverFeatures, HostFacts, HostPlan, MachineRequest } from './features.js';
import type { HostCheck } from './host-check.js';
import type { Snapshot } from './snapshot.js';
import type { StartSpec, Started, StopOptions } from './specs.js';

export type { Accel, DriverFeatures, HostCheck, HostFacts, HostPlan, MachineRequest, PortForward, Snapshot, StartSpec, Started, StopOptions };
export { snapshotTaken, snapshotWithoutMemory, unknownSnapshot } from './snapshot.js';


/** The host a machine lives on cannot be asked whether it runs (a libvirt host down, SSH to it failing). */
export class HostUnreachableError extends UserError {}

/** Where a machine runs, for status and messages. */
export interface MachineLocation {
  /** The driver: "qemu", "libvirt". */
  driver: string;
  /** Its host, for people: "this host", "root@lab". */
  host: string;
  /** Its host as the driver addresses it (a libvirt URI), where that is not simply this host. */
  uri?: string;
  /** What its host calls the machine (a libvirt domain), where that is not the machine's own name. */
  name?: string;
  /** What pid() answers: the process id here, or an id of its host's choosing. */
  pidLabel: 'pid' | 'domain id';
}

export interface Driver {
  readonly features: DriverFeatures;

  /** Where the machine runs. */
  location(): MachineLocation;

  /**
   * What the machine record keeps of where the machine was made, so a changed Vmfile
   * never moves it (the factory reads it back); undefined for vmfile's own QEMU.
   */
  placement(): Placement | undefined;

  /** The host that runs the machine, probed once per command (HostUnreachableError when it cannot be asked). */
  host(): Promise<HostFacts>;

  /**
   * Checks a machine against that host, and that this host has the programs the driver
   * runs; resolves with the accelerator to use and every problem found (never throws
   * for a machine that does not fit; throws HostUnreachableError).
   */
  check(request: MachineRequest, envAccel: string | undefined): Promise<HostCheck>;

  /** The hypervisor's version line there: saved memory is loaded only by the one that saved it. */
  hypervisor(): Promise<string>;

  /** How SSH reaches the guest's forwarded port: directly on this host's loopback, or through another host. */
  sshHop(): SshHop | undefined;

  /** Where the guest's console is written on this host, if it is. */
  consoleLog(): string | undefined;

  /** The machine's disk as a file on this host (QEMU's overlay), or undefined where it lives elsewhere. */
  diskFile(): string | undefined;

  /**
   * Whether the machine's disk was made: with its record, what makes a machine created.
   * Cheap; a driver whose disks live on another host answers true.
   */
  hasDisk(): Promise<boolean>;

  /**
   * The file the machine's disk is made over, read from the disk's own header (never
   * opened): a box's disk or a warm state's. Undefined when it has none or the driver
   * keeps no such file here. Rejects with a VmfileError when the disk cannot be read.
   */
  base(): Promise<string | undefined>;

  /**
   * The machine's process id while it runs, else undefined. Cheap (no QMP); throws only
   * HostUnreachableError, when the machine's host cannot be asked. libvirt: on another
   * host there is no process here, and libvirt's domain id stands in.
   */
  pid(): Promise<number | undefined>;

  /** Whether the running guest's CPUs are stopped. A machine that does not answer counts as not paused. */
  paused(): Promise<boolean>;

  /**
   * Continues a guest whose CPUs are stopped (a start cut short between loading saved
   * memory and continuing it); resolves false when it was running already. On a machine
   * that does not run: a UserError.
   */
  continue(): Promise<boolean>;

  /**
   * When the guest was stopped because its disk could not be written (the host's file
   * system was full), continues it and returns true; a guest paused for any other
   * reason, or running, is left as it is (false). If the disk is still full, the guest
   * stops again at its next write.
   */
  continueAfterIoError(): Promise<boolean>;

  /**
   * Creates the machine's disk over the box, or over `base`: a disk saveState() left,
   * which must then never change. Called once per machine; an existing disk is replaced.
   * `phase` is told how far long work is (libvirt: the box's upload to its host).
   */
  create(box: InstalledBox, diskBytes: number, base?: string, phase?: Phase): Promise<void>;

  /**
   * Whether the machine's disk is there and readable; rejects with a UserError saying
   * what is wrong (a missing or unreadable disk, a box no longer installed).
   */
  checkDisk(box: InstalledBox): Promise<void>;

  /**
   * Starts the machine and resolves once it runs (not once the guest is ready). In the
   * wrong state: starting a machine that already runs is refused with a UserError.
   */
  start(spec: StartSpec): Promise<Started>;

  /**
   * Stops the machine and resolves once its process is gone: graceful first when asked,
   * then forced. Repeating it on a stopped machine resolves 'not running' and clears
   * what a crash may have left (pid file, socket, runtime fields of the record).
   */
  stop(options: StopOptions): Promise<'clean' | 'forced' | 'not running'>;

  /**
   * Saves the running machine's memory into its disk, calls `saved` (the caller records
   * it), then stops the process. A failed save leaves the machine running as it was.
   * On a machine that does not run: a UserError. libvirt: its managed save, which keeps
   * the memory in the host's save directory rather than in the disk.
   */
  suspend(saved: () => Promise<void>): Promise<void>;

  /**
   * Pauses the running machine, writes its memory and device state to `file`, then
   * stops the process. The disk is left as it was at the pause and made read-only, to
   * serve as the base of other machines (a warm state). A failed save leaves no file.
   * On a machine that does not run: a UserError. Without features.warmStart: a UserError.
   */
  saveState(file: string): Promise<void>;

  /**
   * Drops the memory saved by suspend(): on a running machine once a resume reached the
   * guest, on a stopped one to discard it. A no-op when there is none.
   */
  discardSavedState(): Promise<void>;

  /** User snapshots (the saved state of suspend() is never listed). Works running or stopped. */
  listSnapshots(): Promise<Snapshot[]>;

  /**
   * Saves a snapshot: disk and memory while running, disk only while stopped; resolves
   * with which. A name already taken is refused with a UserError.
   */
  saveSnapshot(name: string): Promise<{ memory: boolean }>;

  /**
   * Brings a snapshot back: into the running machine (it must hold memory, else a
   * UserError) or onto the stopped disk. An unknown name is a UserError listing the real ones.
   */
  applySnapshot(name: string): Promise<{ memory: boolean }>;

  /**
   * Sets the running guest's clock from the host's without SSH (QEMU: the guest agent,
   * driver/qemu/agent.ts). False when it could not: no agent, or a driver without one;
   * the caller then sets it over SSH.
   */
  setGuestClock(): Promise<boolean>;

  /**
   * Runs a program in the running guest as root through the QEMU guest agent, without
   * SSH; undefined when no agent answered by the deadline, or a driver without one.
   */
  execInGuest(argv: readonly string[], options: { stdin?: string; timeoutMs: number }): Promise<{ code: number; output: string } | undefined>;

  /**
   * Whether a program in the guest has opened the guest agent's channel (QEMU reports
   * the virtio-serial port open): an agent is starting or running, even if it does not
   * answer yet. Undefined where the driver cannot tell.
   */
  guestAgentChannelOpen?(): Promise<boolean | undefined>;

  /**
   * Forwards the SSH port of a machine started with holdSsh (again a no-op when it is
   * open); resolves with the port, another one when that one was taken meanwhile.
   * closeSsh() takes the forward away again. Without features.heldSsh: a UserError.
   */
  openSsh(port: number): Promise<number>;
  closeSsh(port: number): Promise<void>;

  /** Deletes a snapshot, running or stopped. An unknown name is a UserError. */
  deleteSnapshot(name: string): Promise<void>;

  /**
   * Writes the machine's whole disk (the box folded in) as a standalone raw image,
   * telling how far (0..1). The machine must be stopped. libvirt, on another host: the
   * disk is flattened into a raw volume there and downloaded.
   */
  exportDisk(destination: string, onProgress?: (fraction: number) => void): Promise<void>;

  /** Stops the machine if it runs and removes everything the driver made. Repeating it is a no-op. */
  destroy(): Promise<void>;
}

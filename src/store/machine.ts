/**
 * machine.json: what vmfile recorded about a created machine. It lives in the project's
 * .vmfile/, so it is read as untrusted: only a regular file (store/regular-file.ts), and
 * a libvirt URI keeps its host alone (vmfile/libvirt-uri.ts says why).
 */
import { z } from 'zod';
import { ConfigError } from '../errors.js';
import { formatIssues } from '../vmfile/config.js';
import { POSIX_USER_PATTERN } from '../vmfile/box-metadata.js';
import { recordedUri } from '../vmfile/libvirt-uri.js';
import { LIBVIRT_URI, POOL_NAME } from '../vmfile/schema.js';
import { writeJsonAtomic } from './json.js';
import { readRegularFile, UnreadableFileError } from './regular-file.js';

/** A forwarded port as QEMU bound it (autoCorrect may have moved the host port). */
const forwardSchema = z.object({ protocol: z.enum(['tcp', 'udp']), hostIp: z.string(), hostPort: z.number(), guestPort: z.number() });

export type PortForward = z.infer<typeof forwardSchema>;

/**
 * Where a warm state's saved memory holds the guest kernel's boot ID (a guest-physical
 * address) and the ID it holds there, as 32 hex digits (guest/boot-id.ts).
 */
export const bootIdLocationSchema = z.strictObject({ address: z.number().int().nonnegative(), value: z.string().regex(/^[0-9a-f]{32}$/) });

export type BootIdLocation = z.infer<typeof bootIdLocationSchema>;

export const machineStateSchema = z.object({
  name: z.string(),
  instanceId: z.string(),
  createdAt: z.string(),
  box: z.object({ name: z.string(), version: z.string(), sha256: z.string() }),
  /** The login user, from box.json: reaches ssh_config and the package scrubber, so held to the same pattern. */
  user: z.string().regex(POSIX_USER_PATTERN),
  /**
   * Where the machine was created when that is a libvirt host: it stays there (a changed
   * Vmfile does not move it). Absent: vmfile's own QEMU on this host. The URI is read
   * without the options that name a program (recordedUri), whatever the file says.
   */
  provider: z.strictObject({ type: z.literal('libvirt'), uri: z.string().regex(LIBVIRT_URI).transform(recordedUri), pool: z.string().regex(POOL_NAME), domain: z.string().regex(/^vmfile-[a-z0-9-]+$/) }).optional(),
  /**
   * Set while the guest still has its box's own login (a Vagrant box: Vagrant's insecure
   * key, the box's host key; a warm state: the state's login and host key) and has not
   * yet been given the machine's keys; cleared by the first login (guest/first-login.ts).
   */
  login: z.enum(['vagrant-insecure-key', 'warm-state']).optional(),
  /**
   * A machine made over a warm state (lifecycle/warm.ts): the state's saved memory, which
   * its first start loads. Cleared as that start begins, so it is loaded at most once
   * (the disk goes on from it); later starts boot.
   */
  warmMemory: z.string().optional(),
  /** With warmMemory: where that memory holds the boot ID, which the first start replaces. */
  warmBootId: bootIdLocationSchema.optional(),
  /** Set while running: where SSH is forwarded and which accelerator runs it. */
  sshPort: z.number().optional(),
  /** Set while that port is chosen but not forwarded yet: a Vagrant box's first boot, before the machine is its own. */
  sshHeld: z.literal(true).optional(),
  /** Forwarded ports as actually bound (autoCorrect may have moved them). */
  forwards: z.array(forwardSchema).optional(),
  accel: z.enum(['kvm', 'tcg']).optional(),
  bootedAt: z.string().optional(),
  /** Set once a boot reached SSH and the guest flushed its first-boot work (keys, user) to disk. */
  initialized: z.boolean().optional(),
  /**
   * Set when a machine is made over its box (not over a warm state, whose generic machine
   * did it for the disk they share); cleared once a boot has checked that the root file
   * system fills the disk (guest/grow-root.ts). Machines made before the check have none.
   */
  checkRoot: z.literal(true).optional(),
  /** CPUs, memory and boot QEMU was started with: a suspended machine must resume with the same. */
  launch: z.object({ cpus: z.number(), memory: z.number(), boot: z.enum(['kernel', 'bios', 'uefi']).optional(), generation: z.string().uuid().optional() }).optional(),
  /** Synced folders as set up at the last boot (type decided then). */
  folders: z
    .array(
      z.object({
        host: z.string(),
        guest: z.string(),
        readonly: z.boolean(),
        type: z.enum(['virtiofs', '9p', 'rsync']),
        tag: z.string(),
        exclude: z.array(z.string()).optional(),
        gitignore: z.boolean().optional(),
      }),
    )
    .optional(),
  /**
   * Set from the moment QEMU starts until the guest met every requirement (SSH, first
   * boot flushed, folders, provisioning): a vmfile killed in between leaves it set, and
   * the next vmup finishes that start instead of calling the machine ready.
   */
  starting: z.enum(['boot', 'resume']).optional(),
  /** Set while the machine's memory is saved in its disk (vmfile suspend) and QEMU is stopped. */
  suspendedAt: z.string().optional(),
});

export type MachineState = z.infer<typeof machineStateSchema>;
/** Where a machine on another driver than vmfile's own QEMU was made (driver/registry.ts reads it back). */
export type Placement = NonNullable<MachineState['provider']>;

/** The machine's record, or undefined when it has none; a damaged record is a ConfigError naming the file and what is wrong. */
export async function readMachineState(path: string): Promise<MachineState | undefined> {
  let text: string;
  try {
    text = await readRegularFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    const odd = error instanceof UnreadableFileError;
    throw new ConfigError(`machine record ${path} cannot be read: ${(error as Error).message}`, {
      hint: odd ? 'vmfile destroy clears the machine; vmfile writes its record as a small regular file' : 'check its permissions',
    });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw damaged(path, [`not JSON (${(error as Error).message})`]);
  }
  const parsed = machineStateSchema.safeParse(value);
  if (!parsed.success) throw damaged(path, formatIssues(parsed.error.issues));
  return parsed.data;
}

function damaged(path: string, problems: readonly string[]): ConfigError {
  return new ConfigError(`machine record ${path} is damaged: ${problems.join('; ')}`, {
    hint: 'vmfile destroy removes the machine (the box is kept); or restore the file from a backup',
  });
}

/** The record never stores what only a Vmfile may say (a libvirt URI's programs): it is written with the host alone. */
export async function writeMachineState(path: string, state: MachineState): Promise<void> {
  await writeJsonAtomic(path, state.provider === undefined ? state : { ...state, provider: { ...state.provider, uri: recordedUri(state.provider.uri) } });
}

/** What only holds while QEMU runs: gone once it stopped. */
export function withoutRuntime(state: MachineState): MachineState {
  const { sshPort: _port, sshHeld: _held, accel: _accel, bootedAt: _booted, forwards: _forwards, starting: _starting, ...rest } = state;
  return rest;
}

/**
 * The one writer of a machine's record during a start: every change goes through it,
 * written whole and at once (store/json.ts), and what was written is what `state` says.
 * Each write is a point a killed vmfile can be picked up from, so a start writes at the
 * moments that matter (created, launched, memory consumed, first login, ready) and at
 * no others.
 */
export class MachineRecord {
  constructor(
    readonly path: string,
    private current: MachineState,
  ) {}

  /** Writes a new machine's first record. */
  static async create(path: string, state: MachineState): Promise<MachineRecord> {
    await writeMachineState(path, state);
    return new MachineRecord(path, state);
  }

  get state(): MachineState {
    return this.current;
  }

  async update(change: (state: MachineState) => MachineState): Promise<MachineState> {
    const next = change(this.current);
    await writeMachineState(this.path, next);
    this.current = next;
    return next;
  }
}

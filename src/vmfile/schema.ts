/**
 * The Vmfile schema: the only definition of what a Vmfile may say. Authoring types
 * (what `defineVm` accepts) are its input type; the rest of vmfile works on the
 * parsed output, with sizes in bytes and every default filled in.
 */
import { posix } from 'node:path';
import { z } from 'zod';
import { BOX_NAME_PATTERN as BOX_NAME, BOX_NAME_RULE } from './box-metadata.js';
import { httpUrlSchema, USER_CHECKSUM_PATTERN } from './box-source.js';
import { formatSize, parseSize } from './size.js';
import { CONSTRAINT_RULE, parseVersionConstraints } from './version.js';
import { stepId, stepInputSchema } from './steps.js';
import { MACHINE_NAME_PATTERN } from './names.js';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
const TiB = 1024 ** 4;

function size(what: string, min: number, max: number) {
  return z
    .string({ error: `expected a size like "2GiB" or "512MiB"` })
    .transform((text, ctx) => {
      const bytes = parseSize(text);
      if (bytes === undefined) {
        ctx.addIssue({ code: 'custom', message: `expected a size like "2GiB" or "512MiB", got ${JSON.stringify(text)}` });
        return z.NEVER;
      }
      if (bytes < min || bytes > max) {
        ctx.addIssue({
          code: 'custom',
          message: `${what} ${JSON.stringify(text)} is out of range: must be between ${formatSize(min)} and ${formatSize(max)}`,
        });
        return z.NEVER;
      }
      return bytes;
    });
}

const HOSTNAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i;
const boxNameSchema = z.string().regex(BOX_NAME, { error: `box names are ${BOX_NAME_RULE}` });

/**
 * A box: a name, or { name, version?, url?, checksum? }. `version` is exact or a
 * Vagrant-style constraint (">= 1.2, < 2"). `url` is where vmup downloads the box when it
 * is missing: a Vagrant catalog (JSON) or a box file. A box file from a Vmfile must come
 * with its `checksum`, checked before anything is installed: the Vmfile is shared, and
 * whoever runs vmup on it should get the file its author meant (a catalog carries its
 * own checksums). `vmfile box add NAME URL` leaves that choice to the user, as Vagrant does.
 */
const boxRefSchema = z.union(
  [
    boxNameSchema,
    z
      .strictObject({
        name: boxNameSchema,
        version: z
          .string()
          .refine((text) => parseVersionConstraints(text) !== undefined, { error: `expected ${CONSTRAINT_RULE}` })
          .optional(),
        url: httpUrlSchema.optional(),
        checksum: z.string().regex(USER_CHECKSUM_PATTERN, { error: 'expected "sha256:" and 64 hex digits' }).optional(),
        /**
         * Where a box built from a recipe finds the locked packages its mirror no longer
         * serves: an archive-snapshot mirror laid out as snapshot.debian.org is (the default;
         * VMFILE_SNAPSHOT_MIRROR overrides both).
         */
        snapshotMirror: httpUrlSchema.optional(),
      })
      .superRefine((box, ctx) => {
        if (box.checksum !== undefined && box.url === undefined) ctx.addIssue({ code: 'custom', path: ['checksum'], message: 'a checksum applies to a box downloaded from "url"; add the url' });
      }),
  ],
  { error: 'expected a box name like "debian-12" or { name: "debian-12", version: "..." }' },
);

const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;
const port = (what: string) =>
  z
    .number({ error: `expected a ${what} port number` })
    .int({ error: `expected a whole ${what} port number` })
    .min(1, { error: `${what} ports are 1-65535` })
    .max(65535, { error: `${what} ports are 1-65535` });

const portSchema = z
  .strictObject({
    guest: port('guest'),
    host: port('host'),
    /** Where the port listens on the host: loopback unless the Vmfile says otherwise. */
    hostIp: z.string().regex(IPV4, { error: 'expected an IPv4 address like "127.0.0.1" or "0.0.0.0"' }).default('127.0.0.1'),
    /** Required to listen on anything but loopback: the port is then reachable from other hosts. */
    public: z.boolean().optional(),
    protocol: z.enum(['tcp', 'udp'], { error: 'expected "tcp" or "udp"' }).default('tcp'),
    /** When the host port is taken, pick a free one and report it instead of failing. */
    autoCorrect: z.boolean().default(false),
  })
  .refine((spec) => !IPV4.test(spec.hostIp) || isLoopback(spec.hostIp) || spec.public === true, {
    path: ['hostIp'],
    error: (issue) => {
      const input = issue.input as { hostIp?: unknown } | undefined;
      return `${JSON.stringify(input?.hostIp)} makes the port reachable from other hosts; add public: true to say you mean it, or leave hostIp out (127.0.0.1)`;
    },
  });

/** 127.0.0.0/8: only this host reaches it. */
export function isLoopback(ip: string): boolean {
  return ip.startsWith('127.');
}

/**
 * Guest paths a folder must not take: rsync --delete (or a mount) there would wipe or
 * hide the guest's own system, or the login user's home with its SSH keys.
 */
export function forbiddenGuestPath(path: string): string | undefined {
  const normal = posix.normalize(path).replace(/(.)\/+$/, '$1');
  if (SYSTEM_DIRS.has(normal)) return `${path} is a system directory of the guest; a folder there would replace it`;
  if (/^\/home\/[^/]+$/.test(normal) || normal === '/root') return `${path} is a home directory; a folder there would replace it, SSH keys included (use a directory inside it)`;
  return undefined;
}

const SYSTEM_DIRS = new Set(['/', '/bin', '/boot', '/dev', '/etc', '/home', '/lib', '/lib32', '/lib64', '/libx32', '/media', '/mnt', '/opt', '/proc', '/run', '/sbin', '/srv', '/sys', '/tmp', '/usr', '/usr/bin', '/usr/lib', '/usr/local', '/usr/sbin', '/usr/share', '/var', '/var/lib', '/var/log']);

const folderSchema = z.strictObject({
  host: z.string().min(1, { error: 'host path must not be empty' }),
  guest: z
    .string()
    .startsWith('/', { error: 'guest path must be absolute' })
    .refine((path) => !path.startsWith('/') || forbiddenGuestPath(path) === undefined, { error: (issue) => forbiddenGuestPath(String(issue.input)) ?? 'not allowed' }),
  /** Omitted: virtiofs where the host has virtiofsd, else rsync. */
  type: z.enum(['virtiofs', '9p', 'rsync'], { error: 'expected "virtiofs", "9p" or "rsync"' }).optional(),
  readonly: z.boolean().default(false),
  /**
   * A live folder holding the project's .vmfile/ (machine keys) or the Vmfile (code the
   * host runs) is refused writable unless this says the guest may change them.
   */
  shareProjectState: z.boolean().optional(),
  /**
   * rsync folders only: paths left out, as rsync patterns ("*.log", "/build/", "data/**").
   * Excluded paths in the guest are kept, not deleted.
   */
  exclude: z
    .array(
      z
        .string()
        .min(1, { error: 'an exclude pattern must not be empty' })
        .max(4096)
        // eslint-disable-next-line no-control-regex
        .regex(/^[^\x00-\x1f\x7f]+$/, { error: 'an exclude pattern must not hold control characters' }),
    )
    .default([]),
  /**
   * rsync folders only: leave out what git ignores (its own rules: .gitignore files at
   * every depth, .git/info/exclude, the global excludes file), and the .git directory.
   * Default: true for the project directory itself, false for other folders.
   */
  gitignore: z.boolean().optional(),
});

export type PortSpec = z.output<typeof portSchema>;
export type FolderSpec = z.output<typeof folderSchema>;

/**
 * A libvirt connection URI vmfile can use: the local system or session daemon, or one
 * on another host over SSH (the SSH options libvirt itself reads, such as keyfile, may
 * follow as a query). It reaches virsh and ssh as one argv element, never a shell.
 */
export const LIBVIRT_URI = /^qemu:\/\/\/(system|session)$|^qemu\+ssh:\/\/([a-z_][a-z0-9_.-]{0,31}@)?([A-Za-z0-9][A-Za-z0-9.-]{0,252}|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?\/(system|session)(\?[A-Za-z0-9_=&%/.,:+-]*)?$/;
export const POOL_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

const libvirtHostSchema = z.union(
  [
    z.string().regex(LIBVIRT_URI, { error: 'expected "qemu:///system" or "qemu+ssh://[user@]host[:port]/system"' }),
    z.strictObject({
      uri: z.string().regex(LIBVIRT_URI, { error: 'expected "qemu:///system" or "qemu+ssh://[user@]host[:port]/system"' }),
      pool: z.string().regex(POOL_NAME, { error: 'a pool name is letters, digits, ".", "_" and "-"' }).optional(),
    }),
  ],
  { error: 'expected a libvirt URI, or { uri, pool? }' },
);

export const providerSchema = z.discriminatedUnion(
  'type',
  [
    z.strictObject({ type: z.literal('qemu') }),
    z
      .strictObject({
        type: z.literal('libvirt'),
        /** One host (default qemu:///system)... */
        uri: z.string().regex(LIBVIRT_URI, { error: 'expected "qemu:///system", "qemu:///session" or "qemu+ssh://[user@]host[:port]/system"' }).optional(),
        /** ...or several, over which the Vmfile's machines are placed by `placement`. */
        hosts: z.array(libvirtHostSchema).min(1, { error: 'name at least one host' }).max(64).optional(),
        /** 'spread': the machines that use `hosts` go round-robin over them, in the Vmfile's order. */
        placement: z.enum(['spread'], { error: 'expected "spread"' }).default('spread'),
        /** The storage pool that holds box and machine volumes on the host (a host entry may name its own). */
        pool: z.string().regex(POOL_NAME, { error: 'a pool name is letters, digits, ".", "_" and "-"' }).default('default'),
      })
      .refine((provider) => provider.uri === undefined || provider.hosts === undefined, { error: 'give either uri or hosts, not both', path: ['hosts'] }),
  ],
  { error: 'expected { type: "qemu" } or { type: "libvirt", uri?, hosts?, pool? }' },
);

export type ProviderSpec = z.output<typeof providerSchema>;

/** One machine. A single-machine Vmfile is exactly this; a multi-machine one merges `defaults` into each entry. */
export const machineSchema = z.strictObject({
  box: boxRefSchema,
  cpus: z
    .number({ error: 'expected a whole number of CPUs' })
    .int({ error: 'expected a whole number of CPUs' })
    .min(1, { error: 'a machine needs at least 1 CPU' })
    .max(256, { error: 'more than 256 CPUs is not supported' })
    .default(2),
  memory: size('memory', 128 * MiB, 4 * TiB).prefault('1GiB'),
  disk: size('disk', 1 * GiB, 64 * TiB).prefault('10GiB'),
  hostname: z
    .string()
    .regex(HOSTNAME, { error: 'a hostname is 1-63 letters, digits and "-", not starting or ending with "-"' })
    .optional(),
  accel: z.enum(['auto', 'kvm', 'tcg'], { error: 'expected "auto", "kvm" or "tcg"' }).default('auto'),
  /** For boxes that boot themselves: 'bios' (SeaBIOS) or 'uefi' (OVMF). Default: what the box records. */
  firmware: z.enum(['bios', 'uefi'], { error: 'expected "bios" or "uefi"' }).optional(),
  /**
   * Start a new machine from a warm state of its box (saved running state) instead of
   * booting it. Unset: wherever a warm start can apply (lifecycle/layers.ts says where not).
   */
  warmStart: z.boolean({ error: 'expected true or false' }).optional(),
  /** Where the machine runs: vmfile's own QEMU (the default), or a libvirt host, local or remote. */
  provider: providerSchema.default({ type: 'qemu' }),
  bootTimeout: z
    .number({ error: 'expected seconds as a number' })
    .positive({ error: 'bootTimeout must be more than 0 seconds' })
    .max(24 * 3600, { error: 'bootTimeout is at most 86400 seconds' })
    .default(300),
  provision: z
    .array(stepInputSchema)
    .default([])
    .superRefine((steps, ctx) => {
      // Step ids record what has run; two steps with one id would share a record.
      const seen = new Set<string>();
      steps.forEach((step, index) => {
        const id = stepId(step.name, index);
        if (seen.has(id)) {
          ctx.addIssue({
            code: 'custom',
            message: step.name === undefined ? `step ${index + 1} is unnamed, and its automatic name "${id}" is taken by a named step` : `two steps are named "${id}"`,
          });
        }
        seen.add(id);
      });
    }),
  ports: z
    .array(portSchema)
    .default([])
    .superRefine((ports, ctx) => {
      const seen = new Set<string>();
      for (const forward of ports) {
        const key = `${forward.protocol}/${forward.host}`;
        if (seen.has(key)) ctx.addIssue({ code: 'custom', message: `host port ${forward.host}/${forward.protocol} is forwarded twice` });
        seen.add(key);
      }
    }),
  /** Address on the private network shared by the machines of this Vmfile. */
  network: z.strictObject({ ip: z.string().regex(IPV4, { error: 'expected an IPv4 address like "10.10.0.11"' }) }).optional(),
  /** Default: the Vmfile's directory at /vmfile, by rsync (see src/folders/plan.ts). `[]` syncs nothing. */
  folders: z.array(folderSchema).default([{ host: '.', guest: '/vmfile', type: 'rsync', readonly: false, exclude: [] }]),
  /** The machine vmssh enters when a multi-machine Vmfile names none. */
  primary: z.boolean().default(false),
  /** false keeps the machine out of a bare vmup (name it to start it). */
  autostart: z.boolean().default(true),
});

/** Multi-machine form: the shape only; each merged machine is checked by machineSchema. */
export const multiMachineSchema = z.strictObject({
  defaults: z.record(z.string(), z.unknown()).optional(),
  machines: z
    .record(z.string().regex(MACHINE_NAME_PATTERN, { error: 'machine names are lower-case letters, digits and "-", starting with a letter' }), z.record(z.string(), z.unknown()))
    .refine((machines) => Object.keys(machines).length > 0, { error: 'name at least one machine' }),
});

type MachineInput = z.input<typeof machineSchema>;

/** What a Vmfile author writes (sizes as strings, defaults optional): one machine, or several. */
export type VmfileInput = MachineInput | { defaults?: Partial<MachineInput>; machines: Record<string, Partial<MachineInput>> };
/** One parsed machine. */
export type MachineOutput = z.output<typeof machineSchema>;

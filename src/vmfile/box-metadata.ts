/** box.json: what a box is and how it boots. Validated on every read. */
import { z } from 'zod';

/** Box names and versions become directory names in the store: no separators, no dot-dot. */
export const BOX_NAME_PATTERN = /^[a-z0-9][a-z0-9._-]*$/i;
export const BOX_VERSION_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/;

const bootSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('kernel'), kernel: z.string(), initrd: z.string().optional(), cmdline: z.string() }),
  z.object({
    type: z.literal('firmware'),
    /** The firmware a machine gets unless its Vmfile says `firmware`. */
    firmware: z.enum(['bios', 'uefi']),
    /** Every firmware the disk was found to boot with (box/firmware.ts); absent in boxes added before it was recorded. */
    supports: z.array(z.enum(['bios', 'uefi'])).optional(),
  }),
]);

const sourceSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('recipe'),
    recipe: z.string(),
    recipeHash: z.string(),
    suite: z.string(),
    mirror: z.string(),
    /** "package version" lines of everything installed, sorted. */
    packages: z.array(z.string()),
    /** Timestamps inside the box were clamped to this (seconds since 1970). Absent in boxes built before it was recorded. */
    sourceDateEpoch: z.number().int().optional(),
    /** snapshot.debian.org timestamp the packages came from, when the recipe pins one. */
    snapshot: z.string().optional(),
    /** When the build ran (ISO 8601): the mirror's state at that time decides the package versions. */
    built: z.string().optional(),
  }),
  z.object({ kind: z.literal('import'), file: z.string(), format: z.enum(['qcow2', 'raw', 'vagrant-libvirt']) }),
  z.object({
    kind: z.literal('package'),
    /** The machine it was exported from and that machine's box ("debian-12 2026.11.23"). */
    machine: z.string(),
    fromBox: z.string(),
    /** "package version" lines read from the exported disk, sorted. */
    packages: z.array(z.string()).optional(),
    /** Where `vmfile box add` took it from, on the importing host. */
    importedFrom: z.string().optional(),
  }),
]);

export const boxMetadataSchema = z.object({
  name: z.string().regex(BOX_NAME_PATTERN),
  version: z.string().regex(BOX_VERSION_PATTERN),
  architecture: z.literal('x86_64'),
  disk: z.object({ file: z.string(), format: z.literal('qcow2'), sha256: z.string().regex(/^[0-9a-f]{64}$/), virtualSize: z.number() }),
  boot: bootSchema,
  /** The account cloud-init creates and vmfile logs in as. */
  user: z.string(),
  /**
   * How vmfile logs in the first time: through its cloud-init seed (the default), or as a
   * Vagrant box does, with Vagrant's published insecure key, which the first boot replaces
   * with the machine's own key and host key (guest/first-login.ts).
   */
  firstLogin: z.enum(['cloud-init', 'vagrant-insecure-key']).optional(),
  created: z.string(),
  source: sourceSchema,
});

export type BoxMetadata = z.infer<typeof boxMetadataSchema>;
export type BoxBoot = z.infer<typeof bootSchema>;

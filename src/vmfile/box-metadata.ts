/**
 * box.json: what a box is and how it boots. Validated on every read, and box.json is
 * untrusted input when a box file comes from elsewhere (`vmfile box add`), so every
 * field has a strict shape: names that become directory names, a login user that ends
 * up in ssh_config, cloud-init's user-data and debugfs commands, file names inside the
 * box, and free text that `box list` prints. Unknown keys are refused (strict objects):
 * a box from a newer vmfile with a field this one does not understand is reported,
 * never half-understood.
 */
import { z } from 'zod';
import { CHECKSUM_PATTERN, httpUrlSchema, redactUrl } from './box-source.js';
import { debRefSchema } from './deb-ref.js';
import { POSIX_USER_PATTERN } from './names.js';

/**
 * Box names and versions become directory names in the store: no dot-dot, and at most
 * one slash, for Vagrant's "org/name" (the store spells it -VAGRANTSLASH-, which is why
 * the word VAGRANTSLASH, in any case, cannot be part of a name: with only its dashes
 * refused, "p-VAGRANTSLASH/q" and "p/VAGRANTSLASH-q" spelt one directory; see boxDirName
 * in store/layout.ts).
 */
export const BOX_NAME_PATTERN = /^(?=.{1,128}$)(?!.*vagrantslash)[a-z0-9][a-z0-9._-]*(?:\/[a-z0-9][a-z0-9._-]*)?$/i;
/** How BOX_NAME_PATTERN reads in messages. */
export const BOX_NAME_RULE = 'letters, digits, ".", "_" and "-", starting with a letter or digit, optionally as "org/name", without the word VAGRANTSLASH';
export const BOX_VERSION_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/;
/** A POSIX portable user name (useradd's own rule): no whitespace, no quotes, no newline. */
export { POSIX_USER_PATTERN } from './names.js';
/** A file inside the box: one plain name, never a path, never "." or "..". */
export const BOX_FILE_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9._+-]{0,127}$/;
/** C0 controls, DEL and C1 controls: a newline or an escape sequence in a printed or written value. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const SHA256 = /^[0-9a-f]{64}$/;

/** Free text without control characters, bounded. */
const text = (max: number) => z.string().max(max).refine((value) => !CONTROL.test(value), { error: 'must not contain control characters' });
const sha256 = z.string().regex(SHA256, { error: 'expected 64 lower-case hex digits' });
const fileName = z.string().regex(BOX_FILE_PATTERN, { error: 'expected a plain file name (letters, digits, ".", "_", "+", "-"; no "/")' });
const packageList = z.array(text(512)).max(100_000);

const bootSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('kernel'),
    kernel: fileName,
    initrd: fileName.optional(),
    /** Linux truncates a longer command line (COMMAND_LINE_SIZE on x86). */
    cmdline: text(2048),
    /** sha256 of the kernel and initrd files; absent in boxes made before vmfile recorded them (see box/import.ts). */
    kernelSha256: sha256.optional(),
    initrdSha256: sha256.optional(),
  }),
  z.strictObject({
    type: z.literal('firmware'),
    /** The firmware a machine gets unless its Vmfile says `firmware`. */
    firmware: z.enum(['bios', 'uefi']),
    /** Every firmware the disk was found to boot with (box/firmware.ts); absent in boxes added before it was recorded. */
    supports: z.array(z.enum(['bios', 'uefi'])).max(2).optional(),
  }),
]);

/**
 * Where a box was downloaded from, when it was: the box file's URL, the catalog that
 * named it (box outdated and box update read it again) and the checksum it was verified
 * with. Read back from box.json and written into Vmfile.lock, so held to the same rules
 * as any downloaded text.
 */
const originShape = {
  url: httpUrlSchema.optional(),
  catalog: httpUrlSchema.optional(),
  checksum: z.string().regex(CHECKSUM_PATTERN, { error: 'expected sha256:HEX, sha384:HEX or sha512:HEX' }).optional(),
};

const sourceSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('recipe'),
    recipe: text(128),
    recipeHash: sha256,
    suite: text(128),
    mirror: text(1024),
    /** "package version" lines of everything installed, sorted. */
    packages: packageList,
    /** The .deb files installed, with their sha256 (kept in the package store). Absent in boxes built before vmfile kept them. */
    debs: z.array(debRefSchema).max(100_000).optional(),
    /** Timestamps inside the box were clamped to this (seconds since 1970). Absent in boxes built before it was recorded. */
    sourceDateEpoch: z.number().int().nonnegative().optional(),
    /** snapshot.debian.org timestamp the packages came from, when the recipe pins one. */
    snapshot: text(64).optional(),
    /** When the build ran (ISO 8601): the mirror's state at that time decides the package versions. */
    built: text(64).optional(),
  }),
  z.strictObject({ kind: z.literal('import'), file: text(255), format: z.enum(['qcow2', 'raw', 'vagrant-libvirt']), ...originShape }),
  z.strictObject({
    kind: z.literal('package'),
    /** The machine it was exported from and that machine's box ("debian-12 2026.11.23"). */
    machine: text(128),
    fromBox: text(256),
    /** "package version" lines read from the exported disk, sorted. */
    packages: packageList.optional(),
    /** Where `vmfile box add` took it from, on the importing host. */
    importedFrom: text(255).optional(),
    ...originShape,
  }),
]);

export const boxMetadataSchema = z.strictObject({
  name: z.string().regex(BOX_NAME_PATTERN),
  version: z.string().regex(BOX_VERSION_PATTERN),
  architecture: z.literal('x86_64'),
  disk: z.strictObject({ file: fileName, format: z.literal('qcow2'), sha256, virtualSize: z.number().int().nonnegative() }),
  boot: bootSchema,
  /** The account cloud-init creates and vmfile logs in as. */
  user: z.string().regex(POSIX_USER_PATTERN, { error: 'expected a POSIX user name (lower-case letters, digits, "_" and "-", at most 32)' }),
  /**
   * How vmfile logs in the first time: through its cloud-init seed (the default), or as a
   * Vagrant box does, with Vagrant's published insecure key, which the first boot replaces
   * with the machine's own key and host key (guest/first-login.ts).
   */
  firstLogin: z.enum(['cloud-init', 'vagrant-insecure-key']).optional(),
  created: text(64),
  source: sourceSchema,
});

export type BoxMetadata = z.infer<typeof boxMetadataSchema>;

export interface BoxOrigin {
  url?: string;
  catalog?: string;
  checksum?: string;
}

/**
 * Where the box was downloaded from; empty for a box built here or imported from a file.
 * Credentials are redacted, also in a box.json written before vmfile redacted them.
 */
export function boxOrigin(metadata: BoxMetadata): BoxOrigin {
  const source = metadata.source;
  if (source.kind === 'recipe') return {};
  return {
    ...(source.url === undefined ? {} : { url: redactUrl(source.url) }),
    ...(source.catalog === undefined ? {} : { catalog: redactUrl(source.catalog) }),
    ...(source.checksum === undefined ? {} : { checksum: source.checksum }),
  };
}
export type BoxBoot = z.infer<typeof bootSchema>;

/** Text from outside (an imported file's name, a key in a hostile box.json) made safe to print and record: control characters become "?". */
export function printable(value: string, max = 255): string {
  return value.replace(new RegExp(CONTROL.source, 'g'), '?').slice(0, max);
}


/**
 * `vmfile box add`: a qcow2 cloud image, a Vagrant libvirt .box (a tar, possibly
 * compressed, with metadata.json and box.img), or a vmfile box file (a tar with
 * box.json, as `vmfile package` writes: see archive.ts). The file's checksum, when
 * given, is checked before anything is written; the store changes only by the final
 * atomic rename (see store.ts).
 *
 * Trust: a box is untrusted input from the internet (a downloaded box comes through
 * addBox too), so nothing in it is believed before it is checked, and a refused box
 * leaves the store as it was. An archive's listing is checked before anything is
 * unpacked, and the unpacked files again (untrusted-archive.ts: regular files with
 * plain names only, sizes bounded). Every disk image is opened with the format its
 * magic bytes show, never probed, and must be standalone: a backing file or external
 * data file, which would pull a host file into the box, is refused before qemu-img reads
 * the image (untrusted-image.ts). box.json must pass its strict schema
 * (vmfile/box-metadata.ts), and the disk, kernel and initrd must match the sha256 it
 * records. A box made before vmfile recorded kernel and initrd digests is taken with
 * the digests of the files as they arrive (trust on first import, as for the disk of a
 * qcow2 image), and those are recorded in the installed box.json. What kind of file
 * was given is box-file.ts; a Vagrant box's own rules are vagrant-box.ts.
 */
import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { UserError } from '../errors.js';
import { convertImage, imageInfo } from '../qemu/img.js';
import { readHead, sniffImage } from './box-file.js';
import { readDiskLayout } from './firmware.js';
import { refuseRecipeName } from './recipes.js';
import { BOX_DISK_FILE, BOX_INITRD_FILE, BOX_KERNEL_FILE, BOX_METADATA_FILE } from '../store/layout.js';
import { sha256File } from '../store/digest.js';
import { BOX_NAME_PATTERN, BOX_NAME_RULE, BOX_VERSION_PATTERN, boxMetadataSchema, printable, type BoxBoot, type BoxMetadata, type BoxOrigin } from '../vmfile/box-metadata.js';
import { formatIssues } from '../vmfile/config.js';
import { cleanStaging, installStaged, makeStaging, type InstalledBox } from './store.js';
import { inPhase, type Reporter } from '../ui/reporter.js';
import { unpackUntrusted, type ArchiveOrigin } from './untrusted-archive.js';
import { checkStandaloneImage } from './untrusted-image.js';
import type { SpaceProbe } from './space.js';
import { importVagrantBox, type ImportDisk } from './vagrant-box.js';

/** "sha256:HEX" -> HEX, or a clear error. */
export function parseChecksum(text: string): string {
  const match = /^sha256:([0-9a-fA-F]{64})$/.exec(text.trim());
  if (match?.[1] === undefined) throw new UserError(`--checksum ${JSON.stringify(text)} is not of the form sha256:<64 hex digits>`);
  return match[1].toLowerCase();
}

export interface AddBoxOptions {
  home: string;
  /** Shows the import as a phase with a progress bar. */
  reporter?: Reporter;
  name: string;
  file: string;
  checksum?: string;
  version?: string;
  /** Where `file` was downloaded from (box/remote.ts), recorded in box.json's source. */
  origin?: BoxOrigin;
  /** Reads the free space an archive unpacks into (space.ts); tests stand in a small disk. */
  freeSpace?: SpaceProbe;
}

export async function addBox(options: AddBoxOptions): Promise<InstalledBox> {
  checkBoxName(options.name, options.version);
  await refuseRecipeName(options.name);
  const head = await readHead(options.file, options.name);
  if (options.checksum !== undefined) {
    const expected = parseChecksum(options.checksum);
    const actual = await sha256File(options.file);
    if (actual !== expected) {
      throw new UserError(`box ${options.name}: checksum mismatch for ${options.file}: expected sha256:${expected}, got sha256:${actual}`, {
        hint: 'the file is corrupt or not the one you meant; nothing was added',
      });
    }
  }
  const kind = sniffImage(head);
  if (kind === 'unknown') {
    throw new UserError(`box ${options.name}: ${shownFile(options)} is neither a qcow2 image nor a Vagrant .box archive nor a vmfile box file`, {
      hint: 'convert a raw image first: qemu-img convert -f raw -O qcow2 IMAGE disk.qcow2',
    });
  }
  const origin: ArchiveOrigin = { box: options.name, file: shownFile(options) };
  const staging = await makeStaging(options.home, `add-${options.name}`);
  // Flattening copies the image into the store; it was checked to have nothing to fold in.
  const importDisk: ImportDisk = (source, format, disk) =>
    options.reporter === undefined
      ? convertImage(source, disk, 'qcow2', { sourceFormat: format })
      : inPhase(options.reporter, `box ${options.name}`, `Importing the disk ${source === options.file ? importedName(options) : basename(source)}`, (phase) =>
          convertImage(source, disk, 'qcow2', { sourceFormat: format, onProgress: (fraction) => phase.measure(fraction) }),
        );
  try {
    const disk = join(staging, BOX_DISK_FILE);
    let metadata: BoxMetadata;
    if (kind === 'qcow2') {
      await checkStandaloneImage(options.file, 'qcow2', origin);
      await importDisk(options.file, 'qcow2', disk);
      metadata = await importedMetadata(options, disk, 'qcow2');
    } else {
      const extracted = join(staging, 'extract');
      await mkdir(extracted);
      const files = await unpackUntrusted(options.file, extracted, origin, options.freeSpace);
      if (files.includes(BOX_METADATA_FILE)) {
        metadata = await importVmfileBox(options, { extracted, files, staging });
      } else {
        await importVagrantBox(origin, { extracted, files }, disk, importDisk);
        metadata = await importedMetadata(options, disk, 'vagrant-libvirt');
      }
      await rm(extracted, { recursive: true, force: true });
    }
    return await installStaged(options.home, staging, metadata);
  } catch (error) {
    await cleanStaging(staging);
    throw error;
  }
}

async function importedMetadata(options: AddBoxOptions, disk: string, format: 'qcow2' | 'vagrant-libvirt'): Promise<BoxMetadata> {
  const info = await imageInfo(disk, 'qcow2');
  const layout = await readDiskLayout(disk);
  if (layout.boots.length === 0) {
    options.reporter?.notice(
      `box ${options.name}: no boot loader found on ${importedName(options)} (${layout.table === 'none' ? 'no partition table' : `a ${layout.table.toUpperCase()} disk with no EFI system partition or BIOS boot code`}); machines will try BIOS and may not boot`,
    );
  }
  return {
    name: options.name,
    version: options.version ?? todayVersion(),
    architecture: 'x86_64',
    disk: { file: BOX_DISK_FILE, format: 'qcow2', sha256: await sha256File(disk), virtualSize: info.virtualSize },
    boot: { type: 'firmware', firmware: layout.boots[0] ?? 'bios', ...(layout.boots.length > 0 ? { supports: layout.boots } : {}) },
    // Vagrant's convention: user "vagrant", first reached with Vagrant's insecure key.
    ...(format === 'vagrant-libvirt' ? { user: 'vagrant', firstLogin: 'vagrant-insecure-key' as const } : { user: 'vm' }),
    created: new Date().toISOString(),
    source: { kind: 'import', file: importedName(options), format, ...options.origin },
  };
}

interface Unpacked {
  extracted: string;
  /** The files in `extracted`, every one a regular file with a plain name. */
  files: readonly string[];
}

/**
 * A vmfile box file: box.json says how the box boots, who logs in and what is installed,
 * and the sha256 of its disk (and kernel and initrd), which are verified here. The disk
 * is taken as it is (not re-encoded), so its digest stays the one recorded where it was
 * made, and a Vmfile.lock written there verifies here too. It is kept under the name
 * given to `box add`, and under its own version unless --version says otherwise.
 */
async function importVmfileBox(options: AddBoxOptions, unpacked: Unpacked & { staging: string }): Promise<BoxMetadata> {
  const { extracted, files, staging } = unpacked;
  const where = `box ${options.name}: ${shownFile(options)}`;
  let value: unknown;
  try {
    value = JSON.parse(await readFile(join(extracted, BOX_METADATA_FILE), 'utf8'));
  } catch {
    throw new UserError(`${where} has a box.json that is not JSON`, { hint: 'the file is damaged; make it again with vmfile package' });
  }
  const parsed = boxMetadataSchema.safeParse(value);
  if (!parsed.success) {
    throw new UserError(`${where} has an invalid box.json: ${formatIssues(parsed.error.issues).map((line) => printable(line, 300)).join('; ')}`, {
      hint: 'it may come from a newer vmfile (then upgrade vmfile); otherwise make it again with vmfile package. Nothing was added',
    });
  }
  const original = parsed.data;
  const boot = original.boot;
  const named = [original.disk.file, ...(boot.type === 'kernel' ? [boot.kernel, ...(boot.initrd === undefined ? [] : [boot.initrd])] : [])];
  if (new Set(named).size !== named.length) throw new UserError(`${where}: its box.json names one file for two purposes (${named.join(', ')})`);
  const member = (name: string, what: string): string => {
    if (!files.includes(name)) throw new UserError(`${where} has no ${name}, which its box.json names as the ${what}`, { hint: 'the box file is incomplete; nothing was added' });
    return join(extracted, name);
  };
  const source = member(original.disk.file, 'disk');
  // A backing file would make QEMU read whatever host file it names every time the box boots.
  const info = await checkStandaloneImage(source, 'qcow2', { box: options.name, file: shownFile(options), member: original.disk.file });
  await verifyDigest(source, original.disk.sha256, `the disk ${original.disk.file}`, where);
  await rename(source, join(staging, BOX_DISK_FILE));
  let installedBoot: BoxBoot = boot;
  if (boot.type === 'kernel') {
    const kernelSha256 = await verifyDigest(member(boot.kernel, 'kernel'), boot.kernelSha256, `the kernel ${boot.kernel}`, where);
    await rename(join(extracted, boot.kernel), join(staging, BOX_KERNEL_FILE));
    let initrd = {};
    if (boot.initrd !== undefined) {
      const initrdSha256 = await verifyDigest(member(boot.initrd, 'initrd'), boot.initrdSha256, `the initrd ${boot.initrd}`, where);
      await rename(join(extracted, boot.initrd), join(staging, BOX_INITRD_FILE));
      initrd = { initrd: BOX_INITRD_FILE, initrdSha256 };
    }
    installedBoot = { type: 'kernel', kernel: BOX_KERNEL_FILE, cmdline: boot.cmdline, kernelSha256, ...initrd };
  }
  const importedFrom = importedName(options);
  return {
    ...original,
    name: options.name,
    version: options.version ?? original.version,
    disk: { ...original.disk, file: BOX_DISK_FILE, virtualSize: info.virtualSize },
    boot: installedBoot,
    source: original.source.kind === 'package' ? { ...withoutOrigin(original.source), importedFrom, ...options.origin } : original.source,
  };
}

/** Where a box came from is what this host downloaded it from, never what the box file says. */
function withoutOrigin(source: PackageSource): PackageSource {
  const { url: _url, catalog: _catalog, checksum: _checksum, ...rest } = source;
  return rest;
}

type PackageSource = Extract<BoxMetadata['source'], { kind: 'package' }>;

/** The file as messages name it: a download by its URL, not by its partial file. */
function shownFile(options: AddBoxOptions): string {
  return options.origin?.url ?? options.file;
}

/** The file's own name: the last part of the URL it was downloaded from, not the name of the download in progress. */
function importedName(options: AddBoxOptions): string {
  return printable(options.origin?.url === undefined ? basename(options.file) : basename(new URL(options.origin.url).pathname) || options.origin.url);
}

/** The file's sha256, which must be `recorded` when box.json records one. */
async function verifyDigest(path: string, recorded: string | undefined, what: string, where: string): Promise<string> {
  const actual = await sha256File(path);
  if (recorded !== undefined && actual !== recorded) {
    throw new UserError(`${where}: the sha256 of ${what} is ${actual}, but its box.json records ${recorded}`, {
      hint: 'the file was damaged or changed after it was made; nothing was added',
    });
  }
  return actual;
}

/** Refuses names and versions that could not be used from a Vmfile or would escape the store. */
export function checkBoxName(name: string, version: string | undefined): void {
  if (!BOX_NAME_PATTERN.test(name)) throw new UserError(`box name ${JSON.stringify(name)} is not valid`, { hint: `use ${BOX_NAME_RULE}` });
  if (version !== undefined && !BOX_VERSION_PATTERN.test(version)) {
    throw new UserError(`box version ${JSON.stringify(version)} is not valid`, { hint: 'use letters, digits, ".", "_", "+" and "-", for example 2026.11.1' });
  }
}

export function todayVersion(now = new Date()): string {
  return `${now.getUTCFullYear()}.${now.getUTCMonth() + 1}.${now.getUTCDate()}`;
}

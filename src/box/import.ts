/**
 * `vmfile box add`: a qcow2 (or raw) cloud image, a Vagrant libvirt .box (a tar,
 * possibly compressed, with metadata.json and box.img), or a vmfile box file (a tar
 * with box.json, as `vmfile package` writes: see archive.ts). The file's checksum, when
 * given, is checked before anything is written; the store changes only by the final
 * atomic rename (see store.ts).
 */
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { run } from '../exec.js';
import { UserError } from '../errors.js';
import { convertImage, imageInfo } from '../qemu/img.js';
import { readDiskLayout } from './firmware.js';
import { BOX_DISK_FILE, BOX_INITRD_FILE, BOX_KERNEL_FILE, BOX_METADATA_FILE, VAGRANT_DISK_FILE, VAGRANT_METADATA_FILE } from '../store/layout.js';
import { sha256File } from '../store/digest.js';
import { BOX_NAME_PATTERN, BOX_VERSION_PATTERN, boxMetadataSchema, printable, type BoxMetadata } from '../vmfile/box-metadata.js';
import { formatIssues } from '../vmfile/config.js';
import { cleanStaging, installStaged, makeStaging, type InstalledBox } from './store.js';
import { inPhase, type Reporter } from '../ui/reporter.js';
import { pathExists } from '../store/exists.js';

export type ImageKind = 'qcow2' | 'tar' | 'gzip' | 'bzip2' | 'xz' | 'zstd' | 'unknown';

/** What a file is, from its first bytes. Pure, so it is tested with tables. */
export function sniffImage(head: Buffer): ImageKind {
  if (head.subarray(0, 4).equals(Buffer.from([0x51, 0x46, 0x49, 0xfb]))) return 'qcow2';
  if (head.length >= 262 && head.subarray(257, 262).toString('latin1') === 'ustar') return 'tar';
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2';
  if (head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (head.subarray(0, 4).equals(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))) return 'zstd';
  return 'unknown';
}

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
}

export async function addBox(options: AddBoxOptions): Promise<InstalledBox> {
  checkBoxName(options.name, options.version);
  const head = await readHead(options.file);
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
    throw new UserError(`box ${options.name}: ${options.file} is neither a qcow2 image nor a Vagrant .box archive nor a vmfile box file`, {
      hint: 'convert a raw image first: qemu-img convert -O qcow2 IMAGE disk.qcow2',
    });
  }
  const staging = await makeStaging(options.home, `add-${options.name}`);
  // Flattening copies the image into the store and drops any backing-file reference.
  const importDisk = (source: string, disk: string): Promise<void> =>
    options.reporter === undefined
      ? convertImage(source, disk, 'qcow2')
      : inPhase(options.reporter, `box ${options.name}`, `Importing the disk ${basename(source)}`, (phase) => convertImage(source, disk, 'qcow2', undefined, (fraction) => phase.measure(fraction)));
  try {
    const disk = join(staging, BOX_DISK_FILE);
    let metadata: BoxMetadata;
    if (kind === 'qcow2') {
      await importDisk(options.file, disk);
      metadata = await importedMetadata(options, disk, 'qcow2');
    } else {
      const extracted = join(staging, 'extract');
      await mkdir(extracted);
      await run('tar', ['-xf', options.file, '-C', extracted, '--no-same-owner'], { purpose: `unpack ${options.file}` });
      if (await pathExists(join(extracted, BOX_METADATA_FILE))) {
        metadata = await importVmfileBox(options, extracted, staging);
      } else {
        await importVagrantBox(options.file, extracted, disk, options.name, importDisk);
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
  const info = await imageInfo(disk);
  const layout = await readDiskLayout(disk);
  if (layout.boots.length === 0) {
    options.reporter?.notice(
      `box ${options.name}: no boot loader found on ${basename(options.file)} (${layout.table === 'none' ? 'no partition table' : `a ${layout.table.toUpperCase()} disk with no EFI system partition or BIOS boot code`}); machines will try BIOS and may not boot`,
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
    source: { kind: 'import', file: printable(basename(options.file)), format },
  };
}

/**
 * A vmfile box file: box.json says how the box boots, who logs in and what is installed,
 * and the disk's sha256, which is verified here. The disk is taken as it is (not
 * re-encoded), so its digest stays the one recorded where it was made, and a
 * Vmfile.lock written there verifies here too. It is kept under the name given to
 * `box add`, and under its own version unless --version says otherwise.
 */
async function importVmfileBox(options: AddBoxOptions, extracted: string, staging: string): Promise<BoxMetadata> {
  const where = `box ${options.name}: ${options.file}`;
  let parsed;
  try {
    parsed = boxMetadataSchema.safeParse(JSON.parse(await readFile(join(extracted, BOX_METADATA_FILE), 'utf8')));
  } catch {
    throw new UserError(`${where} has a box.json that is not JSON`, { hint: 'the file is damaged; make it again with vmfile package' });
  }
  if (!parsed.success) {
    throw new UserError(`${where} has an invalid box.json: ${formatIssues(parsed.error.issues).map((line) => printable(line, 300)).join('; ')}`, {
      hint: 'it may come from a newer vmfile (then upgrade vmfile); otherwise make it again with vmfile package. Nothing was added',
    });
  }
  const original = parsed.data;
  const source = join(extracted, plainName(original.disk.file, where));
  if (!(await pathExists(source))) throw new UserError(`${where} has no ${original.disk.file}, which its box.json names as the disk`);
  const info = await imageInfo(source);
  // A backing file would make the import read whatever host file it names.
  if (info.format !== 'qcow2' || info.backingFile !== undefined) {
    throw new UserError(`${where}: the disk must be a standalone qcow2 image (it is ${info.format}${info.backingFile === undefined ? '' : ` backed by ${info.backingFile}`})`);
  }
  const actual = await sha256File(source);
  if (actual !== original.disk.sha256) {
    throw new UserError(`${where}: the disk's sha256 is ${actual}, but its box.json records ${original.disk.sha256}`, {
      hint: 'the file was damaged or changed after it was made; nothing was added',
    });
  }
  await rename(source, join(staging, BOX_DISK_FILE));
  let boot = original.boot;
  if (boot.type === 'kernel') {
    await rename(join(extracted, plainName(boot.kernel, where)), join(staging, BOX_KERNEL_FILE)).catch(() => {
      throw new UserError(`${where} boots a kernel but has no ${boot.type === 'kernel' ? boot.kernel : ''} file`);
    });
    if (boot.initrd !== undefined) {
      const initrd = boot.initrd;
      await rename(join(extracted, plainName(initrd, where)), join(staging, BOX_INITRD_FILE)).catch(() => {
        throw new UserError(`${where} names initrd ${initrd} but has no such file`);
      });
    }
    boot = { ...boot, kernel: BOX_KERNEL_FILE, ...(boot.initrd === undefined ? {} : { initrd: BOX_INITRD_FILE }) };
  }
  const importedFrom = printable(basename(options.file));
  return {
    ...original,
    name: options.name,
    version: options.version ?? original.version,
    disk: { ...original.disk, file: BOX_DISK_FILE, virtualSize: info.virtualSize },
    boot,
    source: original.source.kind === 'package' ? { ...original.source, importedFrom } : original.source,
  };
}

/** A file name inside the box file: no directories, so nothing outside the unpacked tree is read. */
function plainName(name: string, where: string): string {
  if (name === '' || name !== basename(name) || name === '.' || name === '..') throw new UserError(`${where}: box.json names a file ${JSON.stringify(name)} outside the box`);
  return name;
}

async function importVagrantBox(file: string, extracted: string, disk: string, name: string, importDisk: (source: string, disk: string) => Promise<void>): Promise<void> {
  let metadata: unknown;
  try {
    metadata = JSON.parse(await readFile(join(extracted, VAGRANT_METADATA_FILE), 'utf8'));
  } catch {
    throw new UserError(`box ${name}: ${file} has no readable metadata.json or box.json, so it is neither a Vagrant box nor a vmfile box`);
  }
  const provider = typeof metadata === 'object' && metadata !== null && 'provider' in metadata ? metadata.provider : undefined;
  if (provider !== 'libvirt') {
    throw new UserError(`box ${name}: ${file} is a Vagrant box for provider ${JSON.stringify(provider)}, not libvirt`, {
      hint: 'vmfile runs QEMU disks; use the libvirt flavour of the box',
    });
  }
  await importDisk(join(extracted, VAGRANT_DISK_FILE), disk);
}

async function readHead(file: string): Promise<Buffer> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch {
    throw new UserError(`cannot read ${file}`, { hint: 'check the path' });
  }
  try {
    const buffer = Buffer.alloc(512);
    const { bytesRead } = await handle.read(buffer, 0, 512, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/** Refuses names and versions that could not be used from a Vmfile or would escape the store. */
export function checkBoxName(name: string, version: string | undefined): void {
  if (!BOX_NAME_PATTERN.test(name)) throw new UserError(`box name ${JSON.stringify(name)} is not valid`, { hint: 'use letters, digits, ".", "_" and "-", starting with a letter or digit' });
  if (version !== undefined && !BOX_VERSION_PATTERN.test(version)) {
    throw new UserError(`box version ${JSON.stringify(version)} is not valid`, { hint: 'use letters, digits, ".", "_", "+" and "-", for example 2026.11.1' });
  }
}

export function todayVersion(now = new Date()): string {
  return `${now.getUTCFullYear()}.${now.getUTCMonth() + 1}.${now.getUTCDate()}`;
}

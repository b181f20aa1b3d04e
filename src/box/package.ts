/**
 * A machine's disk made into a box file another host can `vmfile box add`: the
 * flattened disk (handed over by the machine's driver) is scrubbed of the machine's
 * keys and identity (box/scrub.ts), checked, converted to qcow2 and written as a tar
 * with box.json. Or, with format vagrant-libvirt, the same scrubbed copy is made a box
 * that Vagrant's libvirt provider boots (box/vagrant-libvirt.ts). Everything happens in
 * a staging directory; the output appears whole or not at all.
 */
import { copyFile, lstat, mkdir, rm, stat } from 'node:fs/promises';
import { run } from '../exec.js';
import { ConfigError, UserError } from '../errors.js';
import { join, resolve } from 'node:path';
import { convertImage, imageInfo } from '../qemu/img.js';
import { BOX_DISK_FILE, BOX_INITRD_FILE, BOX_KERNEL_FILE, BOX_METADATA_FILE, STAGING_RAW_DISK } from '../store/layout.js';
import { sha256File } from '../store/digest.js';
import { writeJsonAtomic } from '../store/json.js';
import { inPhase, type Reporter } from '../ui/reporter.js';
import type { BoxMetadata } from '../vmfile/box-metadata.js';
import { writeBoxArchive } from './archive.js';
import { dumpFile } from './debugfs.js';
import { packagesIn } from './manifest.js';
import type { BoxFormat } from './formats.js';
import { scrubImage } from './scrub.js';
import { addVagrantLogin, writeVagrantLibvirtBox, type VagrantBoxMetadata } from './vagrant-libvirt.js';
import { cleanStaging, makeStaging, type InstalledBox } from './store.js';

/** Timestamps inside the box file: fixed, so packaging the same disk twice gives the same file. */
const ARCHIVE_MTIME = 1_700_000_000;

export interface PackageSpec {
  home: string;
  machine: string;
  /** The box the machine was made from: how it boots, its kernel and initrd. */
  box: InstalledBox;
  user: string;
  name: string;
  version: string;
  output: string;
  /** Writes the machine's whole disk as a raw image at the given path. */
  exportDisk: (raw: string, onProgress: (fraction: number) => void) => Promise<void>;
  reporter: Reporter;
  /** vmfile's own box (the default), or a box for Vagrant's libvirt provider (box/vagrant-libvirt.ts). */
  format?: BoxFormat;
}

export type PackageResult =
  | { format: 'vmfile'; metadata: BoxMetadata; scrubbed: string[]; bytes: number }
  | { format: 'vagrant-libvirt'; metadata: VagrantBoxMetadata; scrubbed: string[]; bytes: number };

export async function packageBox(spec: PackageSpec): Promise<PackageResult> {
  const { box, machine, reporter } = spec;
  const label = `machine "${machine}"`;
  if (box.metadata.boot.type === 'firmware') {
    // Scrubbing keys and identity edits the file system in place with debugfs, which
    // needs it at the start of the image; a partitioned disk holds it at an offset.
    throw new UserError(`${label}: vmfile package makes boxes only of machines whose box boots its kernel directly, and box ${box.metadata.name} boots itself from a partitioned disk`, {
      hint: 'a cloud image or Vagrant box can be shared as it is (vmfile box add on the other host); provisioning in the Vmfile rebuilds the rest there',
    });
  }
  const staging = await makeStaging(spec.home, `package-${machine}`);
  try {
    const raw = join(staging, STAGING_RAW_DISK);
    await inPhase(reporter, machine, 'Flattening the disk (box + changes) into a copy', (phase) => spec.exportDisk(raw, (fraction) => phase.measure(fraction)));
    const sourceDateEpoch = box.metadata.source.kind === 'recipe' ? box.metadata.source.sourceDateEpoch : undefined;
    const scrubbed = await inPhase(reporter, machine, 'Removing keys and machine identity from the copy', () =>
      scrubImage(raw, { user: spec.user, label, ...(sourceDateEpoch === undefined ? {} : { sourceDateEpoch }) }),
    );
    if (spec.format === 'vagrant-libvirt') {
      await inPhase(reporter, machine, "Adding Vagrant's login (user vagrant, Vagrant's insecure key)", () =>
        addVagrantLogin(raw, staging, { name: spec.name, version: spec.version }, label, sourceDateEpoch ?? 0),
      );
    }
    // Removing a file frees its blocks but leaves its bytes there: zero every free block,
    // or a deleted private key could be read back from the box file.
    await inPhase(reporter, machine, 'Zeroing the free space of the copy', () => run('zerofree', [raw], { purpose: `zero the free space of the disk copy of ${label}` }));
    await mkdir(resolve(spec.output, '..'), { recursive: true });
    if (spec.format === 'vagrant-libvirt') {
      const metadata = await writeVagrantLibvirtBox({
        raw,
        staging,
        cmdline: box.metadata.boot.cmdline,
        box: { name: spec.name, version: spec.version, machine },
        output: spec.output,
        mtime: ARCHIVE_MTIME,
        label,
        reporter,
      });
      return { format: 'vagrant-libvirt', metadata, scrubbed, bytes: (await stat(spec.output)).size };
    }
    const packages = await manifestOf(raw, staging);
    const disk = join(staging, BOX_DISK_FILE);
    const size = (await stat(raw)).size;
    await inPhase(reporter, machine, 'Converting the copy to qcow2', (phase) => convertImage(raw, disk, 'qcow2', { sourceFormat: 'raw', purpose: `convert the disk copy of ${label}`, onProgress: (fraction) => phase.measure(fraction, size) }));
    await rm(raw, { force: true });
    const boot = box.metadata.boot;
    let bootFiles = {};
    if (boot.type === 'kernel') {
      const kernelSha256 = await copyBootFile(box, 'kernel', join(staging, BOX_KERNEL_FILE));
      const initrdSha256 = boot.initrd === undefined ? undefined : await copyBootFile(box, 'initrd', join(staging, BOX_INITRD_FILE));
      bootFiles = { kernelSha256, ...(initrdSha256 === undefined ? {} : { initrdSha256 }) };
    }
    const metadata: BoxMetadata = {
      name: spec.name,
      version: spec.version,
      architecture: box.metadata.architecture,
      disk: { file: BOX_DISK_FILE, format: 'qcow2', sha256: await sha256File(disk), virtualSize: (await imageInfo(disk, 'qcow2')).virtualSize },
      boot: boot.type === 'kernel' ? { type: 'kernel', kernel: BOX_KERNEL_FILE, ...(boot.initrd === undefined ? {} : { initrd: BOX_INITRD_FILE }), cmdline: boot.cmdline, ...bootFiles } : boot,
      user: spec.user,
      created: new Date().toISOString(),
      source: { kind: 'package', machine, fromBox: `${box.metadata.name} ${box.metadata.version}`, ...(packages === undefined ? {} : { packages }) },
    };
    await writeJsonAtomic(join(staging, BOX_METADATA_FILE), metadata);
    await inPhase(reporter, machine, `Writing ${spec.output}`, () => writeBoxArchive(staging, metadata, spec.output, { mtime: ARCHIVE_MTIME }));
    return { format: 'vmfile', metadata, scrubbed, bytes: (await stat(spec.output)).size };
  } finally {
    await cleanStaging(staging);
  }
}

/**
 * Copies the box's kernel or initrd, never through a symbolic link (which could point at
 * any host file), and resolves with the copy's sha256, which must be the one the box
 * records (a box made before they were recorded has none to compare).
 */
async function copyBootFile(box: InstalledBox, file: 'kernel' | 'initrd', destination: string): Promise<string> {
  const source = box.paths[file];
  const hint = `the box store was changed by hand: remove the box (vmfile box remove ${box.metadata.name} --version ${box.metadata.version}) and add or build it again`;
  const info = await lstat(source);
  if (!info.isFile()) {
    throw new UserError(`box file ${source} is ${info.isSymbolicLink() ? 'a symbolic link' : 'not a regular file'}; vmfile package copies nothing it points to`, { hint });
  }
  await copyFile(source, destination);
  const sha256 = await sha256File(destination);
  const boot = box.metadata.boot;
  const recorded = boot.type !== 'kernel' ? undefined : file === 'kernel' ? boot.kernelSha256 : boot.initrdSha256;
  if (recorded !== undefined && recorded !== sha256) {
    throw new ConfigError(`box ${box.metadata.name} ${box.metadata.version}: its ${file} hashes to ${sha256}, but its box.json records ${recorded}; it was not packaged`, { hint });
  }
  return sha256;
}

/** The disk's package list, from its dpkg status file; undefined for a disk without dpkg. */
async function manifestOf(raw: string, staging: string): Promise<string[] | undefined> {
  const admindir = join(staging, 'dpkg');
  await mkdir(admindir);
  if (!(await dumpFile(raw, '/var/lib/dpkg/status', join(admindir, 'status')))) return undefined;
  try {
    return await packagesIn(admindir);
  } finally {
    await rm(admindir, { recursive: true, force: true });
  }
}

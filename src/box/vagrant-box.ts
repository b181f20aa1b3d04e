/**
 * A Vagrant libvirt box, once unpacked (untrusted-archive.ts): metadata.json must name the
 * libvirt provider, and box.img is opened only as the format its magic bytes show, which
 * must be the one metadata.json claims, and only once it is a standalone image
 * (untrusted-image.ts). The disk is then handed to the importer given (import.ts).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { UserError } from '../errors.js';
import type { ImageFormat } from '../qemu/img.js';
import { VAGRANT_DISK_FILE, VAGRANT_METADATA_FILE } from '../store/layout.js';
import { printable } from '../vmfile/box-metadata.js';
import { readHead, sniffImage } from './box-file.js';
import type { ArchiveOrigin } from './untrusted-archive.js';
import { checkStandaloneImage } from './untrusted-image.js';

/** Copies a checked disk image of `format` into the box being made, as `disk`. */
export type ImportDisk = (source: string, format: ImageFormat, disk: string) => Promise<void>;

/** metadata.json of a Vagrant box: only what vmfile uses is read; Vagrant's other keys are left alone. */
const vagrantMetadataSchema = z.looseObject({ provider: z.unknown(), format: z.string().optional() });

/** A Vagrant libvirt box: its box.img, in the format its magic bytes show, which must be the one metadata.json claims. */
export async function importVagrantBox(origin: ArchiveOrigin, unpacked: { extracted: string; files: readonly string[] }, disk: string, importDisk: ImportDisk): Promise<void> {
  const where = `box ${origin.box}: ${origin.file}`;
  let value: unknown;
  try {
    value = JSON.parse(await readFile(join(unpacked.extracted, VAGRANT_METADATA_FILE), 'utf8'));
  } catch {
    throw new UserError(`${where} has no readable metadata.json or box.json, so it is neither a Vagrant box nor a vmfile box`);
  }
  const parsed = vagrantMetadataSchema.safeParse(value);
  const provider = parsed.success ? parsed.data.provider : undefined;
  if (provider !== 'libvirt') {
    throw new UserError(`${where} is a Vagrant box for provider ${JSON.stringify(printable(String(provider), 64))}, not libvirt`, {
      hint: 'vmfile runs QEMU disks; use the libvirt flavour of the box',
    });
  }
  if (!unpacked.files.includes(VAGRANT_DISK_FILE)) throw new UserError(`${where} is a Vagrant libvirt box without ${VAGRANT_DISK_FILE}`, { hint: 'the box is incomplete; nothing was added' });
  const source = join(unpacked.extracted, VAGRANT_DISK_FILE);
  const claimed = parsed.data?.format ?? 'qcow2';
  const found = sniffImage(await readHead(source, origin.box));
  const format = found === 'qcow2' ? 'qcow2' : found === 'unknown' ? 'raw' : undefined;
  if (format === undefined || format !== claimed) {
    throw new UserError(`${where}: its ${VAGRANT_DISK_FILE} is ${found === 'unknown' ? 'not a qcow2 image (no qcow2 header)' : `a ${found} file`}, but metadata.json says ${JSON.stringify(printable(claimed, 32))}`, {
      hint: 'vmfile opens a disk only as the format it is; the box is damaged or was packed wrongly; nothing was added',
    });
  }
  await checkStandaloneImage(source, format, { box: origin.box, file: origin.file, member: VAGRANT_DISK_FILE });
  await importDisk(source, format, disk);
}

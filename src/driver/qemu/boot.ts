/**
 * How the QEMU driver boots a machine: the box's kernel directly, or the box's own boot
 * loader under SeaBIOS or OVMF. Under UEFI each machine has its own variable store.
 */
import { rename } from 'node:fs/promises';
import type { InstalledBox } from '../../box/store.js';
import { UserError } from '../../errors.js';
import type { BootSpec } from '../../qemu/argv.js';
import { convertImage } from '../../qemu/img.js';
import { pathExists } from '../../store/exists.js';
import type { MachineBoot } from '../../vmfile/boot.js';
import type { QemuFiles } from './files.js';

/** Debian's OVMF (package ovmf): the 4 MiB build without Secure Boot, as libvirt picks by default. */
export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
export const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';

export async function bootSpec(machine: string, paths: Pick<QemuFiles, 'firmwareVars'>, box: InstalledBox, boot: MachineBoot): Promise<BootSpec> {
  const metadata = box.metadata.boot;
  if (metadata.type === 'kernel') {
    return { type: 'kernel', kernel: box.paths.kernel, ...(metadata.initrd === undefined ? {} : { initrd: box.paths.initrd }), cmdline: metadata.cmdline };
  }
  if (boot !== 'uefi') return { type: 'firmware', firmware: 'bios' };
  const missing = await missingFirmware();
  if (missing !== undefined) throw missing;
  const firmware = { code: OVMF_CODE, vars: OVMF_VARS };
  // The variable store is the machine's own from its first UEFI boot on; qcow2, so that
  // savevm (snapshots, suspend) can include it: QEMU refuses to savevm a writable raw drive.
  if (!(await pathExists(paths.firmwareVars))) {
    const partial = `${paths.firmwareVars}.partial`;
    await convertImage(firmware.vars, partial, 'qcow2', { sourceFormat: 'raw', purpose: `copy OVMF's variable store for machine "${machine}"` });
    await rename(partial, paths.firmwareVars);
  }
  return { type: 'firmware', firmware: 'uefi', code: firmware.code, vars: paths.firmwareVars };
}

/** What is wrong when this host cannot boot UEFI machines (OVMF missing), else undefined. */
export async function missingFirmware(): Promise<UserError | undefined> {
  for (const file of [OVMF_CODE, OVMF_VARS]) {
    if (!(await pathExists(file))) return new UserError(`UEFI firmware ${file} is missing`, { hint: "install Debian's ovmf package (apt-get install ovmf), or set firmware: 'bios' if the box boots with BIOS too" });
  }
  return undefined;
}

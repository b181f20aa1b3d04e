/**
 * The one place a driver is made, for every machine: a project's, and the generic
 * machines that warm states and provisioning layers are made from. A machine's record
 * says where it was made (its placement), and that wins over the Vmfile, so a changed
 * Vmfile never moves a machine; a machine not made yet goes where the Vmfile says. Pass
 * the Vmfile's provider (`wanted`) for a made machine too: a record keeps only its host,
 * and the Vmfile says how to reach it.
 * A third driver is a folder next to qemu/ and libvirt/, and a line here.
 */
import type { Placement } from '../store/machine.js';
import { reachUri } from '../vmfile/libvirt-uri.js';
import type { MachineProvider } from '../vmfile/config.js';
import type { Driver } from './driver.js';
import { libvirtDriver, libvirtPlacement } from './libvirt/driver.js';
import { qemuDriver } from './qemu/driver.js';

/** The driver of the machine called `name` whose files are in `dir`. */
export function driverFor(name: string, dir: string, where: { recorded?: Placement | undefined; wanted?: MachineProvider | undefined }): Driver {
  if (where.recorded !== undefined) {
    // The record names the host only; how to reach it (command=...) is the Vmfile's to say (vmfile/libvirt-uri.ts).
    const vmfileUri = where.wanted?.type === 'libvirt' ? where.wanted.uri : undefined;
    return libvirtDriver(name, dir, { ...where.recorded, uri: reachUri(where.recorded.uri, vmfileUri) });
  }
  if (where.wanted?.type === 'libvirt') return libvirtDriver(name, dir, libvirtPlacement(where.wanted, dir, name));
  return qemuDriver(name, dir);
}

/**
 * The driver of the generic machine in `dir` that a warm state or a provisioning layer is
 * made from: vmfile's own QEMU, whose features say it keeps warm states.
 */
export function genericDriver(dir: string): Driver {
  return qemuDriver('vmfile-warm', dir);
}

/**
 * vmfile validate: everything vmup would refuse before creating anything, without
 * booting: the Vmfile itself (already parsed), host capacity, provisioning files,
 * folders, taken host ports, broken machines.
 */
import { probeHost } from '../driver/qemu/driver.js';
import { preflight } from '../lifecycle/up.js';
import type { MachineConfig, Project } from '../vmfile/config.js';

export async function validate(options: { project: Project }): Promise<MachineConfig[]> {
  await preflight(options.project, options.project.machines, await probeHost());
  return options.project.machines;
}

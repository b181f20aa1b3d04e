/** How a machine boots: its box's kernel directly, or the box's own boot loader under BIOS or UEFI firmware. Pure. */
import { ConfigError } from '../errors.js';
import type { BoxBoot } from './box-metadata.js';

export type MachineBoot = 'kernel' | 'bios' | 'uefi';

/** The Vmfile's `firmware` wins when the box can boot with it; otherwise the box's default. */
export function machineBoot(machine: string, wanted: 'bios' | 'uefi' | undefined, box: { name: string; boot: BoxBoot }): MachineBoot {
  const { boot } = box;
  if (boot.type === 'kernel') {
    if (wanted !== undefined) {
      throw new ConfigError(`machine "${machine}": firmware "${wanted}" is set, but box ${box.name} boots its kernel directly and has no boot loader`, {
        hint: 'remove firmware from the Vmfile, or use a box that boots itself (a cloud image or a Vagrant box)',
      });
    }
    return 'kernel';
  }
  if (wanted === undefined) return boot.firmware;
  const supports = boot.supports ?? [boot.firmware];
  if (!supports.includes(wanted)) {
    throw new ConfigError(`machine "${machine}": firmware "${wanted}" is set, but box ${box.name} boots only with ${supports.join(' or ')}`, {
      hint: `set firmware: '${supports[0] ?? boot.firmware}', or remove it`,
    });
  }
  return wanted;
}

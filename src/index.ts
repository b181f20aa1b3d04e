/**
 * The public API for Vmfile authors:
 *
 *   import { defineVm } from 'vmfile';
 *   export default defineVm({ box: 'debian-12', cpus: 2, memory: '2GiB' });
 */
import type { VmfileInput } from './vmfile/schema.js';

export type { VmfileInput as VmConfig } from './vmfile/schema.js';

/** Returns its argument unchanged; it exists so editors type-check and complete a Vmfile. */
export function defineVm(config: VmfileInput): VmfileInput {
  return config;
}

/** The MACs vmfile gives the machines' NICs on the private network. Pure, no I/O. */
import { createHash } from 'node:crypto';

/**
 * The MAC of NIC number `nic` of `machine` in the project at `projectDir`: the same on
 * every boot (so guest configuration keyed on it holds), different across machines and
 * projects. 52:54:00 is QEMU's own prefix; its first octet has the locally-administered
 * bit set and the group bit clear, so the address is a private unicast one.
 */
export function macFor(projectDir: string, machine: string, nic: number): string {
  const digest = createHash('sha256').update(`${projectDir}\0${machine}\0${nic}`).digest();
  const tail = [...digest.subarray(0, 3)].map((byte) => byte.toString(16).padStart(2, '0'));
  return ['52', '54', '00', ...tail].join(':');
}

/**
 * The private NIC's MAC in a warm state's generic machine. QEMU migrates a NIC's MAC with
 * the device, so a machine started from the state has this one until it sets its own
 * (guest/first-login.ts), before it joins its network.
 */
export const WARM_PRIVATE_MAC = '52:54:00:00:57:01';

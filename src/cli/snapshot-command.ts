/** Flags shared by the snapshot commands: an optional machine name. */
import { Flags } from '@oclif/core';

export const machineFlag = {
  machine: Flags.string({ char: 'm', description: 'machine name (needed when the Vmfile has several)' }),
};

export function machineOf(flags: { machine?: string | undefined }): { machine?: string } {
  return flags.machine === undefined ? {} : { machine: flags.machine };
}

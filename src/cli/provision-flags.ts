/** --provision / --no-provision, shared by up and reload, and what they ask of the services. */
import { Flags } from '@oclif/core';

export const provisionFlags = {
  provision: Flags.boolean({ description: 'run provisioning steps even if they ran before (not "never" steps)', exclusive: ['no-provision'] }),
  'no-provision': Flags.boolean({ description: 'skip provisioning' }),
};

export function provisionMode(flags: { provision: boolean; 'no-provision': boolean }): 'boot' | 'all' | 'none' {
  return flags['no-provision'] ? 'none' : flags.provision ? 'all' : 'boot';
}

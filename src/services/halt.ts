/** vmhalt: every named machine shuts down in parallel, each waiting for its own guest. */
import type { ServiceContext } from '../instance/context.js';
import { forEachMachine } from '../instance/fanout.js';
import { selectMachines } from '../instance/select.js';
import { haltMachine, type HaltResult } from '../lifecycle/stop.js';
import type { Project } from '../vmfile/config.js';

export type { HaltResult };

export interface HaltOptions {
  project: Project;
  machines?: readonly string[];
  force: boolean;
  /** Seconds to wait for a clean shutdown before forcing. */
  timeout: number;
}

export async function halt(options: HaltOptions, context: ServiceContext): Promise<HaltResult[]> {
  return forEachMachine(selectMachines(options.project, options.machines), (machine) => haltMachine(options.project, machine.name, options, context.reporter), {
    parallel: true,
    succeeded: 'halted',
    retry: 'vmfile halt --force stops a machine that does not shut down',
  });
}

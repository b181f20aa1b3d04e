/** vmup: create (if needed), boot, wait for SSH, provision; see lifecycle/up.ts. */
import type { ServiceContext } from '../instance/context.js';
import { upMachines, type UpOptions, type UpResult } from '../lifecycle/up.js';

export type { UpOptions, UpResult };

export async function up(options: UpOptions, context: ServiceContext): Promise<UpResult[]> {
  return upMachines(options, context);
}

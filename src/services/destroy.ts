/** vmfile destroy: stop the machine if it runs and remove its state; the box stays. See lifecycle/destroy.ts. */
import type { ServiceContext } from '../instance/context.js';
import { destroyMachines, type DestroyOptions, type DestroyResult } from '../lifecycle/destroy.js';

export type { DestroyOptions, DestroyResult };

export async function destroy(options: DestroyOptions, context: ServiceContext): Promise<DestroyResult[]> {
  return destroyMachines(options, context);
}

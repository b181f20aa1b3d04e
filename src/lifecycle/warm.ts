/**
 * Warm states: a new machine from saved running state instead of a boot.
 *
 * The first time a box is used with a given shape (CPUs, memory, disk, accelerator,
 * boot, QEMU version), vmfile boots it once as a generic machine (lifecycle/capture.ts)
 * and saves it paused: its memory and devices in a file, its disk as a read-only layer.
 * A new machine of that shape gets its own copy-on-write disk over that layer and starts
 * from the saved memory, then becomes itself (guest/first-login.ts): its own host key,
 * login key, machine-id and hostname, its RNG reseeded from the host, its clock set.
 * What a state is on disk, and how it is found, is lifecycle/warm-state.ts.
 */
import type { InstalledBox } from '../box/store.js';
import type { Driver } from '../driver/driver.js';
import { inPhase, type Reporter } from '../ui/reporter.js';
import { counted } from '../ui/words.js';
import { formatSize } from '../vmfile/size.js';
import { captureState } from './capture.js';
import { ensureState, warmKey, type WarmShape, type WarmState } from './warm-state.js';

export { listWarmStates, removeState, removeWarmStates, warmKey, type WarmRecord, type WarmShape, type WarmState, type WarmSummary } from './warm-state.js';

/** The state for this box and shape, made now (a generic boot) when there is none yet. `driver`: the machine's, whose host runs the state. */
export async function ensureWarmState(home: string, box: InstalledBox, shape: WarmShape, driver: Driver, options: { reporter: Reporter; machine: string; bootTimeout: number }): Promise<WarmState> {
  const key = warmKey(box, shape, await driver.hypervisor());
  const title = `Making a warm state of box ${box.metadata.name} (${counted(shape.cpus, 'CPU')}, ${formatSize(shape.memory)}): one generic boot, reused by every new machine of this shape`;
  return ensureState(home, key, `the warm state of box ${box.metadata.name}`, options.bootTimeout * 1000 + 180_000, () =>
    inPhase(options.reporter, options.machine, title, (phase) => captureState({ home, key, box, shape, machine: options.machine, bootTimeout: options.bootTimeout, reporter: options.reporter, phase })),
  );
}

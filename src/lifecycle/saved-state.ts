/** What snapshots and suspend refuse whatever the driver: state QEMU cannot save. */
import { UserError } from '../errors.js';
import type { Instance } from '../instance/inspect.js';

/** QEMU cannot save the state of a vhost-user-fs (virtiofs) device. */
export function refuseLiveFs(machine: Instance, what: string): void {
  const live = machine.state?.folders?.filter((folder) => folder.type === 'virtiofs') ?? [];
  if (live.length > 0) {
    throw new UserError(`machine "${machine.name}": cannot ${what} while a virtiofs folder is attached (${live.map((f) => f.guest).join(', ')}): QEMU cannot save virtiofs state`, {
      hint: "halt the machine and snapshot it then (disk only), or give the folder type: 'rsync' in the Vmfile",
    });
  }
}

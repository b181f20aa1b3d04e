/**
 * The SSH forward of a machine started with it held (StartSpec.holdSsh): added and taken
 * away on QEMU's user network (netdev n0) through HMP's hostfwd_add and hostfwd_remove,
 * while the guest runs. Until it is added, nothing on this host can reach the guest's
 * sshd: a Vagrant box's published login key is no way in for anyone else.
 */
import { UserError } from '../../errors.js';
import { freePort } from '../../network/ports.js';
import { withQmp } from '../../qmp/session.js';

const rule = (port: number) => `tcp:127.0.0.1:${port}`;

/** Forwards 127.0.0.1:`port` to the guest's port 22 (a rule already there is replaced); another port when that one was taken meanwhile. */
export async function openSshForward(machine: string, qmpSocket: string, port: number): Promise<number> {
  return withQmp(qmpSocket, async (qmp) => {
    let candidate = port;
    for (let attempt = 1; ; attempt++) {
      await qmp.hmp(`hostfwd_remove n0 ${rule(candidate)}`).catch(() => '');
      const said = (await qmp.hmp(`hostfwd_add n0 ${rule(candidate)}-:22`)).trim();
      if (said === '') return candidate;
      if (attempt >= 3) throw new UserError(`machine "${machine}": QEMU could not forward its SSH port: ${said}`, { hint: 'vmfile halt --force, then vmup' });
      candidate = await freePort();
    }
  });
}

export async function closeSshForward(qmpSocket: string, port: number): Promise<void> {
  await withQmp(qmpSocket, (qmp) => qmp.hmp(`hostfwd_remove n0 ${rule(port)}`));
}

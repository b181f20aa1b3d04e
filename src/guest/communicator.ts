/**
 * How vmfile reaches a machine's guest over SSH with ssh2: the machine's own login key,
 * its host key pinned (the OpenSSH equivalent, for vmssh and rsync, is guest/openssh.ts).
 */
import { readFile } from 'node:fs/promises';
import { publicKeyBlob, readPublicKey } from '../ssh/keys.js';
import { SshSession, type SshTarget } from '../ssh/client.js';
import { shellCommand } from '../ssh/quote.js';
import { hopArgv, type SshHop } from '../ssh/hop.js';
import type { MachinePaths } from '../store/layout.js';
import type { MachineState } from '../store/machine.js';

/** `hop`: the host the machine's forwards are on when it is not this one (Driver.sshHop). */
export async function sshTargetFor(paths: MachinePaths, state: MachineState, port: number, hop: SshHop | undefined): Promise<SshTarget> {
  return {
    label: `machine "${state.name}"`,
    host: '127.0.0.1',
    port,
    ...(hop === undefined ? {} : { via: hopArgv(hop, port) }),
    user: state.user,
    privateKey: await readFile(paths.privateKey, 'utf8'),
    hostKey: publicKeyBlob(await readPublicKey(paths.hostPublicKey)),
  };
}

export async function connectGuest(paths: MachinePaths, state: MachineState, port: number, hop: SshHop | undefined): Promise<SshSession> {
  return SshSession.connect(await sshTargetFor(paths, state, port, hop));
}

/**
 * A guest brought back from saved memory keeps the wall-clock time it was saved at;
 * set it from the host (its uptime, a monotonic clock, is unaffected).
 */
export async function syncGuestClock(session: SshSession): Promise<void> {
  const seconds = (Date.now() / 1000).toFixed(3);
  await session.exec(shellCommand(['sudo', '-n', 'date', '-u', '-s', `@${seconds}`]) + ' >/dev/null 2>&1');
}

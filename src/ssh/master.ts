/**
 * OpenSSH connection sharing. Each key exchange with an emulated CPU costs about a
 * second, so every OpenSSH client vmfile configures for a machine (vmssh, scp, rsync,
 * `vmfile ssh-config`) shares one connection master per running machine
 * (ControlMaster auto): the first client authenticates, pinned as always, and stays in
 * the background for CONTROL_PERSIST after the last one leaves; later clients open a
 * channel on it without a handshake.
 *
 * The master's socket is a shell in the guest to whoever can open it, so it lives in
 * the machine's private directory (or the private runtime directory). A master must not
 * outlive the guest state it is connected to: the driver closes it when the machine
 * stops, is suspended, or is rolled back to a snapshot.
 */
import { rm } from 'node:fs/promises';
import { run } from '../exec.js';
import { pathExists } from '../store/exists.js';
import { sshOptionArgs } from './config.js';

/** Seconds an idle master stays up: long enough for a working session's commands, short enough to leave nothing behind for long. */
const CONTROL_PERSIST = '600';

export function connectionSharing(controlPath: string): Record<string, string> {
  return { ControlMaster: 'auto', ControlPath: controlPath, ControlPersist: CONTROL_PERSIST };
}

/** For a client that must have its own connection. */
export const NO_SHARING: Readonly<Record<string, string>> = { ControlMaster: 'no', ControlPath: 'none', ControlPersist: 'no' };

/** Ends the master listening on `controlPath`, if one does; a master that does not answer has its socket removed all the same. */
export async function closeSshMaster(controlPath: string): Promise<void> {
  if (!(await pathExists(controlPath))) return;
  // -F /dev/null: nothing from the user's own configuration; only the socket matters for -O.
  await run('ssh', ['-F', '/dev/null', ...sshOptionArgs('vmfile-master', { ControlPath: controlPath }), '-O', 'exit', 'vmfile-master'], { timeout: 5000, purpose: 'close the SSH connection master' }).catch(() => undefined);
  await rm(controlPath, { force: true });
}

/** How services reach a running machine over SSH: the ssh2 target and OpenSSH's argv. */
import { readFile } from 'node:fs/promises';
import { publicKeyBlob, hostKeyAlias, readPublicKey } from '../ssh/keys.js';
import type { SshSession, SshTarget } from '../ssh/client.js';
import { shellCommand } from '../ssh/quote.js';
import type { MachinePaths } from '../state/layout.js';
import type { MachineState } from '../state/machine.js';

export async function sshTargetFor(paths: MachinePaths, state: MachineState, port: number): Promise<SshTarget> {
  return {
    host: '127.0.0.1',
    port,
    user: state.user,
    privateKey: await readFile(paths.privateKey, 'utf8'),
    hostKey: publicKeyBlob(await readPublicKey(paths.hostPublicKey)),
  };
}

/** OpenSSH options that log in with the machine's key and pin its host key. */
export function openSshOptions(paths: MachinePaths, state: MachineState, port: number): Record<string, string> {
  return {
    HostName: '127.0.0.1',
    Port: String(port),
    User: state.user,
    IdentityFile: paths.privateKey,
    IdentitiesOnly: 'yes',
    UserKnownHostsFile: paths.knownHosts,
    HostKeyAlias: hostKeyAlias(state.name),
    StrictHostKeyChecking: 'yes',
    PasswordAuthentication: 'no',
    LogLevel: 'ERROR',
  };
}

/**
 * A guest brought back from saved memory keeps the wall-clock time it was saved at;
 * set it from the host (its uptime, a monotonic clock, is unaffected).
 */
export async function syncGuestClock(session: SshSession): Promise<void> {
  const seconds = (Date.now() / 1000).toFixed(3);
  await session.exec(shellCommand(['sudo', '-n', 'date', '-u', '-s', `@${seconds}`]) + ' >/dev/null 2>&1');
}

/**
 * How vmfile reaches a machine's guest over SSH: the ssh2 target (machine's own login
 * key, pinned host key) and the equivalent OpenSSH options, for vmssh and rsync.
 */
import { readFile } from 'node:fs/promises';
import { publicKeyBlob, hostKeyAlias, readPublicKey } from '../ssh/keys.js';
import { SshSession, type SshTarget } from '../ssh/client.js';
import { connectionSharing } from '../ssh/master.js';
import { shellCommand } from '../ssh/quote.js';
import { hopArgv, hopProxyCommand, type SshHop } from '../ssh/hop.js';
import { parseLibvirtUri } from '../vmfile/libvirt-uri.js';
import type { MachinePaths } from '../store/layout.js';
import type { MachineState } from '../store/machine.js';

export async function sshTargetFor(paths: MachinePaths, state: MachineState, port: number): Promise<SshTarget> {
  const hop = hopOf(state);
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

export async function connectGuest(paths: MachinePaths, state: MachineState, port: number): Promise<SshSession> {
  return SshSession.connect(await sshTargetFor(paths, state, port));
}

/** A machine on another libvirt host is reached through that host (its forwards are on that host's loopback). */
function hopOf(state: MachineState): SshHop | undefined {
  if (state.provider === undefined) return undefined;
  const uri = parseLibvirtUri(state.provider.uri);
  return uri.local ? undefined : uri;
}

/** OpenSSH options that log in with the machine's key, pin its host key, and share one connection per boot (ssh/master.ts). */
export function openSshOptions(paths: MachinePaths, state: MachineState, port: number): Record<string, string> {
  const hop = hopOf(state);
  return {
    ...(hop === undefined ? {} : { ProxyCommand: hopProxyCommand(hop, port) }),
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
    ...connectionSharing(paths.sshControl),
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

/**
 * The OpenSSH options that reach a machine's guest (vmssh, scp, rsync, ssh-config): its
 * own login key, its host key pinned, one shared connection per boot (ssh/master.ts),
 * and through another host when its driver runs it there. No ssh2 here: vmssh's quick
 * path (cli/quick-ssh.ts) loads this without it.
 */
import { hostKeyAlias } from '../ssh/keys.js';
import { connectionSharing } from '../ssh/master.js';
import { hopProxyCommand, type SshHop } from '../ssh/hop.js';
import type { MachinePaths } from '../store/layout.js';
import type { MachineState } from '../store/machine.js';

/**
 * OpenSSH options that log in with the machine's key, pin its host key, and share one
 * connection per boot (ssh/master.ts); through `hop` when the machine's driver says its
 * forwards are on another host's loopback (Driver.sshHop).
 */
export function openSshOptions(paths: MachinePaths, state: MachineState, port: number, hop: SshHop | undefined): Record<string, string> {
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

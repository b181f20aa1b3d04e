/**
 * The hop to a guest whose forwarded SSH port is on another host's loopback (a libvirt
 * host reached over SSH): OpenSSH to that host, asked to connect its stdin and stdout to
 * 127.0.0.1:PORT there (-W). The same argv serves ssh2 (as the socket of the guest's
 * connection) and OpenSSH clients (as ProxyCommand, each word shell-quoted).
 */
import { shellCommand } from './quote.js';

export interface SshHop {
  host: string;
  user?: string;
  port?: number;
  keyfile?: string;
  /** The ssh program to run (libvirt's `command` URI option); default ssh. */
  command?: string;
}

/** OpenSSH to the host with the URI's settings; `options` go before the host. */
function toHost(hop: SshHop, options: readonly string[]): string[] {
  return [
    hop.command ?? 'ssh',
    ...(hop.user === undefined ? [] : ['-l', hop.user]),
    ...(hop.port === undefined ? [] : ['-p', String(hop.port)]),
    ...(hop.keyfile === undefined ? [] : ['-i', hop.keyfile]),
    // No password prompt can be answered here.
    '-o', 'BatchMode=yes',
    '-o', 'ControlMaster=no',
    ...options,
    '--', hop.host,
  ];
}

export function hopArgv(hop: SshHop, guestPort: number): string[] {
  return toHost(hop, ['-W', `127.0.0.1:${guestPort}`]);
}

/**
 * A tunnel that listens on this workstation (`listen`) and leads to a port on the
 * host's loopback (`to`), one -L per forward; it fails at once if a port cannot be bound.
 */
export function tunnelArgv(hop: SshHop, forwards: readonly { listen: string; port: number; to: number }[]): string[] {
  return toHost(hop, ['-N', '-o', 'ExitOnForwardFailure=yes', '-o', 'ServerAliveInterval=15', ...forwards.flatMap((forward) => ['-L', `${forward.listen}:${forward.port}:127.0.0.1:${forward.to}`])]);
}

export function hopProxyCommand(hop: SshHop, guestPort: number): string {
  return shellCommand(hopArgv(hop, guestPort));
}

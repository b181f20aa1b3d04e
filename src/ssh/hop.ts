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

export function hopArgv(hop: SshHop, guestPort: number): string[] {
  return [
    hop.command ?? 'ssh',
    ...(hop.user === undefined ? [] : ['-l', hop.user]),
    ...(hop.port === undefined ? [] : ['-p', String(hop.port)]),
    ...(hop.keyfile === undefined ? [] : ['-i', hop.keyfile]),
    // No password prompt can be answered here, and the guest's SSH runs inside this one.
    '-o', 'BatchMode=yes',
    '-o', 'ControlMaster=no',
    '-W', `127.0.0.1:${guestPort}`,
    '--', hop.host,
  ];
}

export function hopProxyCommand(hop: SshHop, guestPort: number): string {
  return shellCommand(hopArgv(hop, guestPort));
}

/**
 * Host ports for forwarding: whether one is free, and a free one when asked. A port is
 * tested by binding it, as QEMU will; a port found free can still be taken before QEMU
 * binds it, so callers retry on QEMU's "host forwarding rule" error.
 */
import { createSocket } from 'node:dgram';
import net from 'node:net';
import { UserError } from '../errors.js';
import type { PortForward } from '../store/machine.js';
import type { PortSpec } from '../vmfile/schema.js';

export function portAvailable(hostIp: string, port: number, protocol: 'tcp' | 'udp'): Promise<boolean> {
  return new Promise((resolve) => {
    if (protocol === 'udp') {
      const socket = createSocket('udp4');
      socket.once('error', () => resolve(false));
      socket.bind(port, hostIp, () => socket.close(() => resolve(true)));
      return;
    }
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host: hostIp, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** A port the kernel reports free on `hostIp`. */
export function freePort(hostIp = '127.0.0.1', protocol: 'tcp' | 'udp' = 'tcp'): Promise<number> {
  return new Promise((resolve, reject) => {
    if (protocol === 'udp') {
      const socket = createSocket('udp4');
      socket.once('error', reject);
      socket.bind(0, hostIp, () => {
        const { port } = socket.address();
        socket.close(() => resolve(port));
      });
      return;
    }
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, hostIp, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * The forwards to start a machine with: each declared port if it is free, else (with
 * autoCorrect) a free one, reported through `onCorrected`; a taken port without
 * autoCorrect is an error before anything boots.
 */
export async function resolveForwards(machine: string, ports: readonly PortSpec[], onCorrected: (from: number, to: number, spec: PortSpec) => void): Promise<PortForward[]> {
  const forwards: PortForward[] = [];
  for (const spec of ports) {
    let hostPort = spec.host;
    if (!(await portAvailable(spec.hostIp, spec.host, spec.protocol))) {
      if (!spec.autoCorrect) {
        throw new UserError(`machine "${machine}": host port ${spec.hostIp}:${spec.host}/${spec.protocol} (for guest port ${spec.guest}) is already in use`, {
          hint: 'stop what uses it, choose another host port in the Vmfile, or set autoCorrect: true on that port',
        });
      }
      hostPort = await freePort(spec.hostIp, spec.protocol);
      onCorrected(spec.host, hostPort, spec);
    }
    forwards.push({ protocol: spec.protocol, hostIp: spec.hostIp, hostPort, guestPort: spec.guest });
  }
  return forwards;
}

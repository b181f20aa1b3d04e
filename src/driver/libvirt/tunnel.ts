/**
 * Forwarded ports of a machine on another libvirt host reach the user's own host: QEMU
 * forwards them to that host's loopback (on ports vmfile picks), and an OpenSSH tunnel
 * started here (ssh -N -L, with the URI's SSH settings) listens on the ports the Vmfile
 * asks for. The tunnel runs in the background while the machine runs; its pid and the
 * forwards it carries are in the machine's directory, and every stop ends it.
 */
import { spawn } from 'node:child_process';
import { open, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { UserError } from '../../errors.js';
import { tunnelArgv, type SshHop } from '../../ssh/hop.js';
import { processAlive, processStartTime } from '../../store/process.js';
import type { PortForward } from '../../store/machine.js';
import type { StartSpec } from '../driver.js';
import type { LibvirtFiles } from './files.js';

export interface TunnelForward {
  listen: string;
  port: number;
  to: number;
}

export async function startTunnel(machine: string, files: Pick<LibvirtFiles, 'tunnelRecord' | 'tunnelLog'>, hop: SshHop, forwards: readonly TunnelForward[]): Promise<void> {
  await stopTunnel(files);
  if (forwards.length === 0) return;
  const { tunnelRecord: record, tunnelLog: log } = files;
  const output = await open(log, 'w', 0o600);
  const argv = tunnelArgv(hop, forwards);
  const child = spawn(argv[0] ?? 'ssh', argv.slice(1), { detached: true, stdio: ['ignore', 'ignore', output.fd] });
  await output.close();
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  child.once('error', () => undefined);
  child.unref();
  const pid = child.pid ?? 0;
  await writeFile(record, JSON.stringify({ pid, start: (await processStartTime(pid)) ?? null }), { mode: 0o600 });
  const deadline = Date.now() + 15_000;
  for (const forward of forwards) {
    while (!(await accepts(forward.listen, forward.port))) {
      const gone = await Promise.race([exited.then(() => true), new Promise<false>((resolve) => setTimeout(() => resolve(false), 200))]);
      if (gone || Date.now() > deadline) {
        await stopTunnel(files);
        const said = (await readFile(log, 'utf8').catch(() => '')).trim();
        throw new UserError(`machine "${machine}": the tunnel for its forwarded ports (${forwards.map((f) => `${f.listen}:${f.port}`).join(', ')}) did not start${said === '' ? '' : `: ${said}`}`, {
          hint: 'check that those ports are free here (or set autoCorrect on them) and that the libvirt host allows TCP forwarding (AllowTcpForwarding in its sshd_config)',
        });
      }
    }
  }
}

/** Ends the tunnel if one runs (checked by its start time, so a reused pid is never signalled). */
export async function stopTunnel(files: Pick<LibvirtFiles, 'tunnelRecord'>): Promise<void> {
  const record = files.tunnelRecord;
  const text = await readFile(record, 'utf8').catch(() => undefined);
  if (text !== undefined) {
    try {
      const { pid, start } = JSON.parse(text) as { pid?: unknown; start?: unknown };
      if (typeof pid === 'number' && (await processAlive(pid, typeof start === 'string' ? start : undefined))) process.kill(pid, 'SIGTERM');
    } catch {
      // A damaged record: nothing to end that can be identified.
    }
  }
  await rm(record, { force: true });
}

function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: host === '0.0.0.0' ? '127.0.0.1' : host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * The forwards QEMU makes on another host: to that host's loopback, on ports picked at
 * random (a taken one fails the start, which is retried on others). ssh -L carries TCP
 * only, so a UDP forward there is refused.
 */
export function remoteForwards(machine: string, spec: StartSpec): PortForward[] {
  const udp = spec.ports.find((port) => port.protocol === 'udp');
  if (udp !== undefined) {
    throw new UserError(`machine "${machine}": UDP port ${udp.host} cannot be forwarded from a machine on another libvirt host (its forwards come through an SSH tunnel, which carries TCP)`, {
      hint: 'forward TCP ports only, or run this machine on this host',
    });
  }
  return spec.ports.map((port) => ({ protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 20_000 + Math.floor(Math.random() * 40_000), guestPort: port.guest }));
}

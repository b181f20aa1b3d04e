/**
 * The hub: vmfile's private network between the machines of one Vmfile. A small
 * user-space Ethernet switch listening on a Unix socket; every QEMU joins it with
 * `-netdev stream,server=off,addr.type=unix,addr.path=<socket>`. No root, no tap
 * devices, and nothing reachable from outside the host: the only way in is a socket
 * file only the user can open.
 *
 * Contract:
 * - `startHub` refuses to start when a hub already answers on the path, replaces a
 *   stale socket file nobody listens on, and leaves the socket mode 0600.
 * - The hub ends by itself once it has had no client for `idleExitMs` (counted from
 *   start and from each moment the last client leaves), so nothing outlives the
 *   machines. `done` resolves when it has stopped and its socket file is gone.
 * - `ensureHub` returns once a hub accepts connections on the path, starting one as a
 *   detached process if none answers. A second call finds the first hub running.
 */
import { spawn } from 'node:child_process';
import { chmod, rm, stat } from 'node:fs/promises';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { VmfileError } from '../errors.js';
import { EthernetSwitch, FrameDecoder, encodeFrame } from './switch.js';
import { MAX_SOCKET_PATH } from '../store/socket.js';

export class HubError extends VmfileError {}

export interface HubOptions {
  /** How long the hub waits without clients before it stops. Default 60 s. */
  idleExitMs?: number;
}

export interface Hub {
  readonly socketPath: string;
  /** Resolves once the hub has stopped (idle or closed) and removed its socket file. */
  readonly done: Promise<void>;
  readonly clientCount: number;
  /** Stops at once, disconnecting every client. Repeated calls return the same promise. */
  close(): Promise<void>;
}

/**
 * vmup finds a hub answering and only then starts QEMU, which connects seconds later
 * (after virtiofsd, on a busy host). A hub whose last client left just before the probe
 * must still be there; a minute covers that window with room, and a halted project's
 * hub still goes away soon after.
 */
const DEFAULT_IDLE_EXIT_MS = 60_000;
/**
 * A client that stops reading (a paused or frozen guest) must not make the hub buffer
 * without bound. Beyond this many queued bytes its frames are dropped, as a real
 * switch drops on a full queue; TCP in the guests retransmits.
 */
const MAX_QUEUED_BYTES = 1 << 20;

export async function startHub(socketPath: string, options: HubOptions = {}): Promise<Hub> {
  checkSocketPath(socketPath);
  if (await answers(socketPath)) {
    throw new HubError(`network hub: another hub already listens on ${socketPath}`);
  }
  // A socket file nobody listens on is left by a hub that was killed. vmfile starts a
  // project's hub only under the project's network lock (lifecycle/start.ts), so no
  // other hub of ours can be starting on this path now.
  await rm(socketPath, { force: true });

  const idleExitMs = options.idleExitMs ?? DEFAULT_IDLE_EXIT_MS;
  const ethernet = new EthernetSwitch();
  const clients = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    clients.add(socket);
    stopIdleTimer();
    const decoder = new FrameDecoder();
    const port = ethernet.addPort((frame) => {
      if (socket.writableLength <= MAX_QUEUED_BYTES) socket.write(encodeFrame(frame));
    });
    socket.on('data', (chunk: Buffer) => {
      let frames: Buffer[];
      try {
        frames = decoder.push(chunk);
      } catch {
        // Not QEMU framing: nothing sensible can follow on this stream.
        socket.destroy();
        return;
      }
      for (const frame of frames) port.receive(frame);
    });
    // A guest that goes away mid-write resets the connection; 'close' follows and cleans up.
    socket.on('error', () => {});
    socket.on('close', () => {
      port.close();
      clients.delete(socket);
      if (clients.size === 0) startIdleTimer();
    });
  });

  let idleTimer: NodeJS.Timeout | undefined;
  function startIdleTimer(): void {
    stopIdleTimer();
    if (closing === undefined) idleTimer = setTimeout(() => void close(), idleExitMs);
  }
  function stopIdleTimer(): void {
    if (idleTimer !== undefined) clearTimeout(idleTimer);
    idleTimer = undefined;
  }

  let closing: Promise<void> | undefined;
  function close(): Promise<void> {
    closing ??= (async () => {
      stopIdleTimer();
      for (const socket of clients) socket.destroy();
      // server.close removes the socket file of a Unix socket server.
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await removeOwnSocket();
    })();
    return closing;
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      const reason = error.code ?? error.message;
      reject(new HubError(`network hub: cannot listen on ${socketPath}: ${reason}`, { cause: error }));
    });
    server.listen(socketPath, () => resolve());
  });
  // Mode is set after listen: the window is tiny and the socket sits in the project's
  // own .vmfile directory.
  await chmod(socketPath, 0o600);
  const ownInode = (await stat(socketPath)).ino;
  // libuv unlinks the path as the listening socket closes; a new hub may bind it right
  // after, before this one's close callback runs, and that file is not ours to remove.
  async function removeOwnSocket(): Promise<void> {
    const now = await stat(socketPath).catch(() => undefined);
    if (now?.ino === ownInode) await rm(socketPath, { force: true });
  }
  startIdleTimer();

  let resolveDone = (): void => {};
  const done = new Promise<void>((resolve) => {
    resolveDone = resolve;
  });
  server.on('close', () => void removeOwnSocket().finally(resolveDone));

  return {
    socketPath,
    done,
    get clientCount() {
      return clients.size;
    },
    close: async () => {
      await close();
      await done;
    },
  };
}

export interface EnsureHubOptions {
  /** How long to wait for a started hub to accept connections. Default 5000 ms. */
  timeoutMs?: number;
}

/**
 * Makes sure a hub answers on `socketPath`, starting `node entryScript socketPath`
 * (src/network/hub-main.ts) if none does. Returns whether it started one.
 */
export async function ensureHub(
  socketPath: string,
  entryScript: string,
  options: EnsureHubOptions = {},
): Promise<'running' | 'started'> {
  checkSocketPath(socketPath);
  if (await answers(socketPath)) return 'running';

  // Not src/exec.ts: that wrapper runs a command to completion and turns its failure
  // into an error. The hub is a daemon that must outlive this process, detached from
  // its session and stdio, which is child_process.spawn's job.
  const child = spawn(process.execPath, [entryScript, socketPath], { detached: true, stdio: 'ignore' });
  let exited: string | undefined;
  child.on('exit', (code, signal) => {
    exited = signal === null ? `exit code ${String(code)}` : `signal ${signal}`;
  });
  child.on('error', (error) => {
    exited = error.message;
  });
  child.unref();

  const timeoutMs = options.timeoutMs ?? 5_000;
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (await answers(socketPath)) return 'started';
    // A hub that lost a start race to another one exits at once; the winner answers.
    if (exited !== undefined && !(await answers(socketPath))) {
      throw new HubError(`network hub: ${process.execPath} ${entryScript} ${socketPath} stopped at start (${exited})`, {
        hint: 'check that the socket directory exists and is writable, then run vmfile up again',
      });
    }
    if (performance.now() >= deadline) {
      throw new HubError(`network hub: not answering on ${socketPath} after ${timeoutMs} ms`, {
        hint: 'the host may be very busy; run vmfile up again',
      });
    }
    await sleep(50);
  }
}

/** True when something accepts a connection on the socket path right now. */
export function answers(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.createConnection(socketPath);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}

function checkSocketPath(socketPath: string): void {
  if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH) {
    throw new HubError(`network hub: socket path is longer than ${MAX_SOCKET_PATH} bytes: ${socketPath}`, {
      hint: 'move the project to a shorter path',
    });
  }
}

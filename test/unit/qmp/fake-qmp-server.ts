/**
 * A small QMP server standing in for QEMU at the QMP socket seam. It behaves as
 * QEMU does where the client depends on it: a greeting on connect, CommandNotFound
 * for anything before `qmp_capabilities` (and for unknown commands), replies that
 * echo the request id, events that may land between replies. Tests script it per
 * command: a handler may reply, fail, reply late, never reply, emit events, write
 * raw bytes or drop the connection.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface FakeQmpRequest {
  execute: string;
  arguments: Record<string, unknown> | undefined;
  id: unknown;
}

/** What a handler answers; `undefined` sends nothing (the handler may write itself). */
export type FakeQmpReply = { return: unknown } | { error: { class: string; desc: string } } | undefined;

export type FakeQmpHandler = (
  request: FakeQmpRequest,
  connection: FakeQmpConnection,
) => FakeQmpReply | Promise<FakeQmpReply>;

export interface FakeQmpServerOptions {
  /** `false` accepts connections but never greets (a hung QEMU). */
  greeting?: boolean;
  handlers?: Record<string, FakeQmpHandler>;
  /** Where to listen (a machine's QMP socket); default: qmp.sock in a fresh temporary directory. */
  socketPath?: string;
}

export const fakeQemuVersion = { qemu: { major: 8, minor: 2, micro: 2 }, package: 'Debian 1:8.2.2+ds-0ubuntu1' };

export class FakeQmpConnection {
  #negotiated = false;
  #pending = '';

  constructor(
    readonly socket: net.Socket,
    private readonly server: FakeQmpServer,
  ) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.#receive(chunk));
    // The client may drop the connection at any time; that is not a test failure.
    socket.on('error', () => {});
  }

  /** Sends an event the way QEMU does (no "data" member when there is none). */
  emitEvent(event: string, data?: Record<string, unknown>): void {
    const now = Date.now();
    const timestamp = { seconds: Math.floor(now / 1000), microseconds: (now % 1000) * 1000 };
    this.writeRaw(`${JSON.stringify(data === undefined ? { event, timestamp } : { event, data, timestamp })}\n`);
  }

  /** Writes bytes as they are, for split or batched messages. */
  writeRaw(chunk: string | Uint8Array): void {
    if (this.socket.writable) this.socket.write(chunk);
  }

  /** Closes the connection the way an exiting QEMU does. */
  close(): void {
    this.socket.end();
  }

  #receive(chunk: string): void {
    this.#pending += chunk;
    const lines = this.#pending.split('\n');
    this.#pending = lines.pop() ?? '';
    for (const line of lines) {
      if (line.trim() !== '') void this.#handle(line);
    }
  }

  async #handle(line: string): Promise<void> {
    const request = parseRequest(line);
    if (request === undefined) {
      this.#reply(undefined, { error: { class: 'GenericError', desc: 'JSON parse error, invalid request' } });
      return;
    }
    this.server.requests.push(request);
    if (request.execute === 'qmp_capabilities' && this.#negotiated) {
      this.#reply(request.id, {
        error: { class: 'CommandNotFound', desc: 'Capabilities negotiation is already complete, command ignored' },
      });
      return;
    }
    if (request.execute !== 'qmp_capabilities' && !this.#negotiated) {
      this.#reply(request.id, {
        error: { class: 'CommandNotFound', desc: "Expecting capabilities negotiation with 'qmp_capabilities'" },
      });
      return;
    }
    const handler = this.server.handlerFor(request.execute);
    const reply =
      handler === undefined
        ? { error: { class: 'CommandNotFound', desc: `The command ${request.execute} has not been found` } }
        : await handler(request, this);
    if (request.execute === 'qmp_capabilities' && reply !== undefined && 'return' in reply) this.#negotiated = true;
    if (reply !== undefined) this.#reply(request.id, reply);
  }

  #reply(id: unknown, reply: NonNullable<FakeQmpReply>): void {
    // QEMU echoes the id only when the request had one.
    this.writeRaw(`${JSON.stringify(id === undefined ? reply : { ...reply, id })}\n`);
  }
}

export class FakeQmpServer {
  /** Every well-formed request received, in arrival order, across connections. */
  readonly requests: FakeQmpRequest[] = [];
  readonly connections: FakeQmpConnection[] = [];
  readonly #handlers = new Map<string, FakeQmpHandler>([['qmp_capabilities', () => ({ return: {} })]]);
  readonly #connectionWaiters: ((connection: FakeQmpConnection) => void)[] = [];

  private constructor(
    readonly dir: string,
    readonly socketPath: string,
    private readonly server: net.Server,
  ) {}

  /** Listens on `qmp.sock` in a fresh temporary directory, or at `options.socketPath`. */
  static async start(options: FakeQmpServerOptions = {}): Promise<FakeQmpServer> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'vmfile-qmp-'));
    const socketPath = options.socketPath ?? path.join(dir, 'qmp.sock');
    const server = net.createServer();
    const fake = new FakeQmpServer(dir, socketPath, server);
    for (const [command, handler] of Object.entries(options.handlers ?? {})) fake.handle(command, handler);
    server.on('connection', (socket) => {
      const connection = new FakeQmpConnection(socket, fake);
      fake.connections.push(connection);
      if (options.greeting !== false) {
        connection.writeRaw(`${JSON.stringify({ QMP: { version: fakeQemuVersion, capabilities: ['oob'] } })}\n`);
      }
      for (const waiter of fake.#connectionWaiters.splice(0)) waiter(connection);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return fake;
  }

  /** Sets (or replaces) how `command` is answered. */
  handle(command: string, handler: FakeQmpHandler): void {
    this.#handlers.set(command, handler);
  }

  handlerFor(command: string): FakeQmpHandler | undefined {
    return this.#handlers.get(command);
  }

  /** The most recent connection, waiting for one if there is none yet. */
  connection(): Promise<FakeQmpConnection> {
    const latest = this.connections.at(-1);
    if (latest !== undefined) return Promise.resolve(latest);
    return new Promise((resolve) => this.#connectionWaiters.push(resolve));
  }

  /** Sends an event on every open connection. */
  emitEvent(event: string, data?: Record<string, unknown>): void {
    for (const connection of this.connections) connection.emitEvent(event, data);
  }

  /** Stops listening, drops every connection and removes the temporary directory. */
  async stop(): Promise<void> {
    for (const connection of this.connections) connection.socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await rm(this.dir, { recursive: true, force: true });
  }
}

function parseRequest(line: string): FakeQmpRequest | undefined {
  let message: unknown;
  try {
    message = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof message !== 'object' || message === null || Array.isArray(message)) return undefined;
  const fields: Record<string, unknown> = { ...message };
  const { execute, arguments: args, id } = fields;
  if (typeof execute !== 'string') return undefined;
  if (args !== undefined && (typeof args !== 'object' || args === null || Array.isArray(args))) return undefined;
  return { execute, arguments: args === undefined ? undefined : { ...args }, id };
}

/**
 * vmfile's QMP (QEMU Machine Protocol) client over QEMU's `-qmp unix:...` socket.
 *
 * Contract:
 * - `QmpClient.connect` returns only once QEMU's greeting has been read and
 *   `qmp_capabilities` accepted; QEMU refuses every other command before that.
 * - Every command carries a unique id and replies are matched by id, so concurrent
 *   `execute` calls are safe and events interleaved with replies go to listeners only.
 * - Every wait (connect, execute, waitForEvent) has a deadline (`timeoutMs`,
 *   `Infinity` for none) and honours an AbortSignal. A reply arriving after its call
 *   timed out or was aborted is dropped; QEMU may still have acted on the command.
 * - Every failure is a QmpError. `errorClass` is QEMU's error class for error replies,
 *   or 'Disconnected', 'Timeout', 'Aborted' or 'Protocol' for client-side failures.
 *   When the socket closes, everything pending rejects with 'Disconnected'; a stream
 *   that is not QMP closes the connection and rejects everything with 'Protocol'.
 * - No timer outlives the wait it guards, so an idle client keeps only its socket.
 */
import net from 'node:net';
import { InternalError } from '../errors.js';
import { connectFailure, endedError, protocolError, QmpError } from './errors.js';
import { settleOnce, type Settle, type Waiter } from './wait.js';
import { isRecord, LineBuffer, parseEvent, parseGreeting, parseReply, type QmpEvent, type QmpGreeting, type Reply } from './message.js';

export type { QmpEvent, QmpGreeting };
export { QmpError };

export interface QmpCallOptions {
  /** Milliseconds to wait; `Infinity` waits for ever. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
const DEFAULT_CALL_TIMEOUT_MS = 30_000;

export class QmpClient {
  readonly closed: Promise<void>;
  readonly #socket: net.Socket;
  readonly #socketPath: string;
  readonly #lines = new LineBuffer();
  readonly #waiters = new Set<Waiter>();
  readonly #replies = new Map<string, (reply: Reply) => void>();
  readonly #eventListeners = new Set<(event: QmpEvent) => void>();
  #greeting: QmpGreeting | undefined;
  #onGreeting: (() => void) | undefined;
  #nextId = 0;
  /** Set once the connection is finished with; later calls fail at once. */
  #ended: 'client' | 'remote' | QmpError | undefined;
  #socketError: Error | undefined;

  private constructor(socket: net.Socket, socketPath: string) {
    this.#socket = socket;
    this.#socketPath = socketPath;
    // The socket's decoder keeps a multi-byte character split across chunks whole.
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.#receive(chunk));
    socket.on('error', (error) => {
      this.#socketError = error;
    });
    this.closed = new Promise((resolve) => {
      socket.on('close', () => {
        this.#end('remote');
        resolve();
      });
    });
  }

  /**
   * Connects, reads the greeting, negotiates capabilities. Rejects with QmpError
   * (naming the socket path) on ENOENT/ECONNREFUSED or timeout (default 5000 ms).
   */
  static async connect(socketPath: string, options: QmpCallOptions = {}): Promise<QmpClient> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const startedAt = performance.now();
    const client = new QmpClient(net.createConnection(socketPath), socketPath);
    try {
      await client.#wait<void>('QMP greeting', { ...options, timeoutMs }, (settle) => {
        if (client.#greeting !== undefined) settle.resolve();
        client.#onGreeting = () => settle.resolve();
        return () => {
          client.#onGreeting = undefined;
        };
      });
      const remainingMs = Math.max(1, timeoutMs - (performance.now() - startedAt));
      await client.execute('qmp_capabilities', undefined, { ...options, timeoutMs: remainingMs });
    } catch (error) {
      client.close();
      throw client.#connectFailure(error, timeoutMs);
    }
    return client;
  }

  get greeting(): QmpGreeting {
    // connect() is the only way to get a client and it waits for the greeting.
    if (this.#greeting === undefined) throw new InternalError('QmpClient used before its greeting arrived');
    return this.#greeting;
  }

  /**
   * Sends one command and resolves with its `return` value. `T` is what the caller
   * expects QEMU to return; it is not checked. Error replies reject with QmpError.
   */
  execute<T = unknown>(command: string, args?: Record<string, unknown>, options: QmpCallOptions = {}): Promise<T> {
    const id = `vmfile-${++this.#nextId}`;
    const what = `QMP command "${command}"`;
    return this.#wait<T>(what, { ...options, timeoutMs: options.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS }, (settle) => {
      this.#replies.set(id, (reply) => {
        if (reply.ok) {
          settle.resolve(reply.value as T);
        } else {
          settle.reject(
            new QmpError(`${what} failed on ${this.#socketPath}: ${reply.errorClass}: ${reply.desc}`, reply.errorClass),
          );
        }
      });
      const request = args === undefined ? { execute: command, id } : { execute: command, arguments: args, id };
      this.#socket.write(`${JSON.stringify(request)}\n`);
      return () => {
        this.#replies.delete(id);
      };
    });
  }

  /** Runs a human-monitor-command and resolves with the text it printed. */
  async hmp(commandLine: string, options: QmpCallOptions = {}): Promise<string> {
    const output = await this.execute('human-monitor-command', { 'command-line': commandLine }, options);
    if (typeof output !== 'string') {
      throw new QmpError(
        `HMP command "${commandLine}" on ${this.#socketPath}: expected text, got ${JSON.stringify(output)}`,
        'Protocol',
      );
    }
    return output;
  }

  /** Subscribes to events; returns the unsubscribe function. */
  onEvent(listener: (event: QmpEvent) => void): () => void {
    // Wrapped so the same function may be subscribed twice and unsubscribed once.
    const entry = (event: QmpEvent): void => listener(event);
    this.#eventListeners.add(entry);
    return () => {
      this.#eventListeners.delete(entry);
    };
  }

  /**
   * Resolves with the first event named in `names` that arrives after this call;
   * rejects on timeout (default 30000 ms), abort or disconnect.
   */
  waitForEvent(names: string | readonly string[], options: QmpCallOptions = {}): Promise<QmpEvent> {
    const wanted: readonly string[] = typeof names === 'string' ? [names] : names;
    const what = `QMP event ${wanted.join(' or ')}`;
    return this.#wait<QmpEvent>(what, { ...options, timeoutMs: options.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS }, (settle) =>
      this.onEvent((event) => {
        if (wanted.includes(event.event)) settle.resolve(event);
      }),
    );
  }

  /** Closes the connection; pending calls reject with 'Disconnected'. Idempotent. */
  close(): void {
    this.#end('client');
    this.#socket.destroy();
  }

  #wait<T>(what: string, options: QmpCallOptions & { timeoutMs: number }, start: (settle: Settle<T>) => () => void): Promise<T> {
    const ended = this.#ended;
    if (ended !== undefined) return Promise.reject(this.#endedError(what, ended));
    return settleOnce(what, this.#socketPath, this.#waiters, options, start);
  }

  #receive(chunk: string): void {
    for (const line of this.#lines.push(chunk)) {
      if (this.#ended !== undefined) return;
      let message: unknown;
      try {
        message = JSON.parse(line);
      } catch {
        this.#protocolFailure(`received a line that is not JSON: ${truncate(line)}`);
        return;
      }
      if (!isRecord(message)) {
        this.#protocolFailure(`received JSON that is not an object: ${truncate(line)}`);
        return;
      }
      this.#dispatch(message, line);
    }
  }

  #dispatch(message: Record<string, unknown>, line: string): void {
    if (this.#greeting === undefined) {
      const greeting = parseGreeting(message);
      if (greeting === undefined) {
        this.#protocolFailure(`expected the QMP greeting, got ${truncate(line)}`);
        return;
      }
      this.#greeting = greeting;
      this.#onGreeting?.();
      return;
    }
    if ('event' in message) {
      const event = parseEvent(message);
      if (event === undefined) {
        this.#protocolFailure(`received a malformed event: ${truncate(line)}`);
        return;
      }
      for (const listener of [...this.#eventListeners]) {
        try {
          listener(event);
        } catch (error) {
          // A listener's bug must not stop the messages after this one from being
          // read; it still surfaces as an uncaught exception.
          queueMicrotask(() => {
            throw error;
          });
        }
      }
      return;
    }
    if ('return' in message || 'error' in message) {
      const reply = parseReply(message);
      if (reply === undefined) {
        this.#protocolFailure(`received a malformed reply: ${truncate(line)}`);
        return;
      }
      // Unknown ids are replies to calls that already timed out or were aborted.
      const id = message['id'];
      if (typeof id === 'string') this.#replies.get(id)?.(reply);
    }
    // Anything else is a message kind this client does not know; newer QEMUs may add some.
  }

  #protocolFailure(reason: string): void {
    this.#end(protocolError(this.#socketPath, reason));
    this.#socket.destroy();
  }

  #end(reason: 'client' | 'remote' | QmpError): void {
    if (this.#ended !== undefined) return;
    this.#ended = reason;
    for (const waiter of [...this.#waiters]) waiter.fail(this.#endedError(waiter.what, reason));
  }

  #endedError(what: string, reason: 'client' | 'remote' | QmpError): QmpError {
    return endedError(what, this.#socketPath, reason, this.#socketError);
  }

  #connectFailure(error: unknown, timeoutMs: number): unknown {
    return connectFailure(error, this.#socketPath, this.#socketError, timeoutMs);
  }
}

function truncate(text: string): string {
  return text.length > 200 ? `${text.slice(0, 200)}...` : text;
}

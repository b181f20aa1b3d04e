/**
 * The QEMU guest agent (qemu-ga, in the debian-12 box and in many Vagrant boxes), reached
 * over its virtio-serial port, which QEMU serves on a Unix socket in the machine's
 * directory, reachable by vmfile alone: the guest clock set without an SSH key exchange
 * after a snapshot restore, and a Vagrant box's first login taken before its SSH port is
 * open to anyone (guest/first-login.ts).
 *
 * The protocol is QMP's JSON, one command at a time, but a channel can hold half a
 * message left by an earlier client or from before a restore: `guest-sync-delimited`
 * makes the agent drop its input and answer with a 0xFF byte before its reply, so
 * everything before that byte is skipped. The clock is set with `date` through
 * `guest-exec`, not `guest-set-time`, which also runs hwclock and fails in a box without
 * it. Every failure (no agent in the guest, memory saved before the port existed, a slow
 * answer) returns false: the caller then sets the clock over SSH.
 */
import { randomInt } from 'node:crypto';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { AGENT_CHARDEV } from '../../qemu/argv.js';
import type { QmpClient } from '../../qmp/client.js';

/** Sets the guest's clock to the host's through the agent; false when the agent did not do it. */
export async function setClockThroughAgent(socket: string, timeoutMs: number): Promise<boolean> {
  const seconds = (Date.now() / 1000).toFixed(3);
  return (await execThroughAgent(socket, ['/bin/date', '-u', '-s', `@${seconds}`], { timeoutMs }))?.code === 0;
}

/** What a program run through the agent did: its exit code and output (stdout, then stderr). */
export interface AgentExec {
  code: number;
  output: string;
}

/**
 * Runs `argv` in the guest as the agent's user (root), with `stdin`, and waits for it;
 * undefined when the agent did not answer (none in the guest, not started yet) or the
 * program did not end by the deadline.
 */
export async function execThroughAgent(socket: string, argv: readonly string[], options: { stdin?: string; timeoutMs: number }): Promise<AgentExec | undefined> {
  const [path, ...arg] = argv;
  if (path === undefined) return undefined;
  const deadline = Date.now() + options.timeoutMs;
  const agent = await AgentChannel.connect(socket).catch(() => undefined);
  if (agent === undefined) return undefined;
  try {
    if (!(await agent.sync(deadline))) return undefined;
    const input = options.stdin === undefined ? {} : { 'input-data': Buffer.from(options.stdin).toString('base64') };
    const started = await agent.request({ execute: 'guest-exec', arguments: { path, arg, ...input, 'capture-output': true } }, deadline);
    const pid = isRecord(started) && typeof started['pid'] === 'number' ? started['pid'] : undefined;
    if (pid === undefined) return undefined;
    for (;;) {
      const status = await agent.request({ execute: 'guest-exec-status', arguments: { pid } }, deadline);
      if (!isRecord(status)) return undefined;
      if (status['exited'] === true) {
        const text = (field: string) => (typeof status[field] === 'string' ? Buffer.from(status[field], 'base64').toString('utf8') : '');
        return { code: typeof status['exitcode'] === 'number' ? status['exitcode'] : 128 + (typeof status['signal'] === 'number' ? status['signal'] : 0), output: text('out-data') + text('err-data') };
      }
      if (Date.now() > deadline) return undefined;
      await sleep(10);
    }
  } catch {
    return undefined;
  } finally {
    agent.close();
  }
}

/**
 * Whether the guest has opened the agent's virtio-serial port (QMP query-chardev:
 * frontend-open of chardev qga0, qemu/argv.ts): qemu-ga opens it when it starts, before
 * it answers anything, so this says an agent is there before one can be asked.
 */
export async function agentChannelOpen(qmp: Pick<QmpClient, 'execute'>): Promise<boolean | undefined> {
  const chardevs = await qmp.execute<unknown>('query-chardev');
  if (!Array.isArray(chardevs)) return undefined;
  const agent = chardevs.find((entry): entry is Record<string, unknown> => isRecord(entry) && entry['label'] === AGENT_CHARDEV);
  return agent === undefined ? undefined : agent['frontend-open'] === true;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * What the channel may hold unread: far more than any reply to the commands sent here
 * (the output of the few short programs run through it). A guest can write without end;
 * beyond this the channel is closed, and the caller goes over SSH instead.
 */
const MAX_PENDING_BYTES = 64 * 1024;

class AgentChannel {
  #buffer = Buffer.alloc(0);
  #waiting: ((line: string | Error) => void) | undefined;
  /** Until the 0xFF of guest-sync-delimited arrives, input is stale and skipped. */
  #synced = false;

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => this.#receive(chunk));
    socket.on('error', (error) => this.#waiting?.(error));
    socket.on('close', () => this.#waiting?.(new Error('the guest agent channel closed')));
  }

  static connect(path: string): Promise<AgentChannel> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(path);
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new AgentChannel(socket));
      });
    });
  }

  /**
   * guest-sync-delimited until the agent answers with this very id: a channel can still
   * hold the answer to an earlier client's sync (one that gave up before the agent ran),
   * which is skipped like any other stale input.
   */
  async sync(deadline: number): Promise<boolean> {
    const id = randomInt(1, 2 ** 31);
    this.socket.write(`${JSON.stringify({ execute: 'guest-sync-delimited', arguments: { id } })}\n`);
    for (;;) {
      const answer = await this.request(undefined, deadline, true);
      if (answer === id) return true;
    }
  }

  /** Sends one command (none: reads the next reply) and returns its reply's `return` value; throws on an error reply, a closed channel or the deadline. */
  async request(command: object | undefined, deadline: number, sync = false): Promise<unknown> {
    const line = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => settle(new Error('the guest agent did not answer in time')), Math.max(0, deadline - Date.now()));
      const settle = (result: string | Error): void => {
        clearTimeout(timer);
        this.#waiting = undefined;
        if (result instanceof Error) reject(result);
        else resolve(result);
      };
      this.#waiting = settle;
      if (sync) this.#synced = false;
      if (command !== undefined) this.socket.write(`${JSON.stringify(command)}\n`);
      this.#receive(Buffer.alloc(0));
    });
    const reply = JSON.parse(line) as unknown;
    if (!isRecord(reply) || !('return' in reply)) throw new Error(`the guest agent answered ${line.slice(0, 200)}`);
    return reply['return'];
  }

  close(): void {
    this.socket.destroy();
  }

  #receive(chunk: Buffer): void {
    this.#buffer = Buffer.concat([this.#buffer, chunk]);
    if (!this.#synced) {
      const marker = this.#buffer.indexOf(0xff);
      if (marker === -1) {
        this.#buffer = Buffer.alloc(0);
        return;
      }
      this.#buffer = this.#buffer.subarray(marker + 1);
      this.#synced = true;
    }
    // A loop, not recursion: the guest decides how many empty lines come.
    for (let end = this.#buffer.indexOf(0x0a); end !== -1; end = this.#buffer.indexOf(0x0a)) {
      const line = this.#buffer.subarray(0, end).toString('utf8').trim();
      if (line !== '' && this.#waiting === undefined) break;
      this.#buffer = this.#buffer.subarray(end + 1);
      if (line !== '') return this.#waiting?.(line);
    }
    if (this.#buffer.length > MAX_PENDING_BYTES) {
      this.#buffer = Buffer.alloc(0);
      this.socket.destroy();
      this.#waiting?.(new Error(`the guest agent sent more than ${MAX_PENDING_BYTES} bytes without a reply vmfile asked for`));
    }
  }
}

import { spawnSync } from 'node:child_process';
import { stat } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FrameDecoder, encodeFrame } from '../../../src/network/switch.js';
import { HubError, answers, startHub, type Hub, type HubOptions } from '../../../src/network/hub.js';
import { tempDir } from '../temp-dir.js';

const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function hubIn(dir: string, options: HubOptions = {}): Promise<Hub> {
  const hub = await startHub(path.join(dir, 'hub.sock'), options);
  cleanups.push(() => hub.close());
  return hub;
}

/** A stand-in for one QEMU: speaks the stream framing and collects the frames it gets. */
class Guest {
  readonly frames: Buffer[] = [];
  readonly closed: Promise<void>;
  readonly #decoder = new FrameDecoder();
  readonly #waiters = new Set<() => void>();

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.frames.push(...this.#decoder.push(chunk));
      for (const waiter of this.#waiters) waiter();
    });
    this.closed = new Promise((resolve) => socket.on('close', () => resolve()));
  }

  static async connect(socketPath: string): Promise<Guest> {
    const socket = net.createConnection(socketPath);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const guest = new Guest(socket);
    cleanups.push(() => {
      socket.destroy();
    });
    return guest;
  }

  send(destination: string, source: string, payload: string): void {
    this.socket.write(encodeFrame(ethernet(destination, source, payload)));
  }

  /** Resolves once `count` frames have arrived in all (2 s deadline). */
  async received(count: number): Promise<string[]> {
    const payloads = (): string[] => this.frames.map((frame) => frame.subarray(14).toString());
    if (this.frames.length >= count) return payloads();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`got ${this.frames.length} of ${count} frames`)), 2_000);
      const check = (): void => {
        if (this.frames.length < count) return;
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve();
      };
      this.#waiters.add(check);
    });
    return payloads();
  }

  close(): Promise<void> {
    this.socket.end();
    return this.closed;
  }
}

function ethernet(destination: string, source: string, payload: string): Buffer {
  const mac = (text: string): Buffer => Buffer.from(text.replaceAll(':', ''), 'hex');
  return Buffer.concat([mac(destination), mac(source), Buffer.from([0x08, 0x06]), Buffer.from(payload)]);
}

/** Lets the hub's event loop turn a few times so frames that should not arrive would have. */
const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 50));

const BROADCAST = 'ff:ff:ff:ff:ff:ff';
const MAC_1 = '52:54:00:00:00:01';
const MAC_2 = '52:54:00:00:00:02';
const MAC_3 = '52:54:00:00:00:03';

describe('startHub', () => {
  it('switches unicast between two clients after learning, in frames split any way', async () => {
    const hub = await hubIn(await tempDir());
    const one = await Guest.connect(hub.socketPath);
    const two = await Guest.connect(hub.socketPath);
    const three = await Guest.connect(hub.socketPath);

    two.send(BROADCAST, MAC_2, 'who has 10.10.0.11');
    expect(await one.received(1)).toEqual(['who has 10.10.0.11']);
    // One frame split over two writes, then two frames in one write.
    const wire = Buffer.concat([encodeFrame(ethernet(MAC_2, MAC_1, 'reply')), encodeFrame(ethernet(MAC_2, MAC_1, 'data'))]);
    one.socket.write(wire.subarray(0, 6));
    await settle();
    one.socket.write(wire.subarray(6));

    expect(await two.received(2)).toEqual(['reply', 'data']);
    await settle();
    expect(three.frames.map((frame) => frame.subarray(14).toString())).toEqual(['who has 10.10.0.11']);
  });

  it('floods broadcast to every other client but not the sender', async () => {
    const hub = await hubIn(await tempDir());
    const guests = [await Guest.connect(hub.socketPath), await Guest.connect(hub.socketPath), await Guest.connect(hub.socketPath)];
    const [one, two, three] = guests;
    if (one === undefined || two === undefined || three === undefined) throw new Error('three guests expected');

    one.send(BROADCAST, MAC_1, 'hello all');
    expect(await two.received(1)).toEqual(['hello all']);
    expect(await three.received(1)).toEqual(['hello all']);
    await settle();
    expect(one.frames).toEqual([]);
    expect(hub.clientCount).toBe(3);
  });

  it('disconnects a client that does not speak the framing and keeps serving the others', async () => {
    const hub = await hubIn(await tempDir());
    const good = await Guest.connect(hub.socketPath);
    const other = await Guest.connect(hub.socketPath);
    const bad = await Guest.connect(hub.socketPath);

    bad.socket.write('GET / HTTP/1.1\r\n\r\n');
    await bad.closed;
    good.send(BROADCAST, MAC_3, 'still here');
    expect(await other.received(1)).toEqual(['still here']);
  });

  it('stops after the idle time once the last client left, and removes its socket', async () => {
    const hub = await hubIn(await tempDir(), { idleExitMs: 200 });
    const one = await Guest.connect(hub.socketPath);
    const two = await Guest.connect(hub.socketPath);
    await one.close();
    await two.close();
    const leftAt = performance.now();

    await hub.done;

    expect(performance.now() - leftAt).toBeGreaterThanOrEqual(150);
    expect(await answers(hub.socketPath)).toBe(false);
    await expect(stat(hub.socketPath)).rejects.toThrow(/ENOENT/);
  });

  it('keeps running when a client reconnects within the idle time', async () => {
    const hub = await hubIn(await tempDir(), { idleExitMs: 300 });
    await (await Guest.connect(hub.socketPath)).close();
    await new Promise((resolve) => setTimeout(resolve, 150));
    const back = await Guest.connect(hub.socketPath);
    await new Promise((resolve) => setTimeout(resolve, 400));

    expect(hub.clientCount).toBe(1);
    expect(await answers(hub.socketPath)).toBe(true);
    await back.close();
    await hub.done;
  });

  it('stops after the idle time when no client ever connects', async () => {
    const hub = await hubIn(await tempDir(), { idleExitMs: 100 });
    await hub.done;
    expect(await answers(hub.socketPath)).toBe(false);
  });

  it('replaces a stale socket file nobody listens on and makes the socket owner-only', async () => {
    const dir = await tempDir();
    const socketPath = path.join(dir, 'hub.sock');
    // A hub killed with SIGKILL leaves its socket file behind with nobody listening.
    const killed = spawnSync(process.execPath, [
      '-e',
      `require('node:net').createServer().listen(${JSON.stringify(socketPath)}, () => process.kill(process.pid, 'SIGKILL'))`,
    ]);
    expect(killed.signal).toBe('SIGKILL');
    expect((await stat(socketPath)).isSocket()).toBe(true);
    expect(await answers(socketPath)).toBe(false);

    const hub = await hubIn(dir);

    expect(await answers(socketPath)).toBe(true);
    const info = await stat(socketPath);
    expect(info.isSocket()).toBe(true);
    expect(info.mode & 0o777).toBe(0o600);
    expect(hub.socketPath).toBe(socketPath);
  });

  it('refuses to start when a hub already answers on the socket', async () => {
    const dir = await tempDir();
    const first = await hubIn(dir);
    await expect(startHub(first.socketPath)).rejects.toThrow(HubError);
    expect(await answers(first.socketPath)).toBe(true);
  });

  it('rejects a socket path longer than a Unix socket address allows', async () => {
    await expect(startHub(`/tmp/${'x'.repeat(120)}/hub.sock`)).rejects.toThrow(/longer than 107 bytes/);
  });
});

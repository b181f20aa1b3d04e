import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { QmpClient, QmpError, type QmpEvent } from '../../../src/qmp/client.js';
import { FakeQmpServer, fakeQemuVersion, type FakeQmpServerOptions } from './fake-qmp-server.js';

const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startServer(options: FakeQmpServerOptions = {}): Promise<FakeQmpServer> {
  const server = await FakeQmpServer.start(options);
  cleanups.push(() => server.stop());
  return server;
}

async function connected(options: FakeQmpServerOptions = {}): Promise<{ server: FakeQmpServer; client: QmpClient }> {
  const server = await startServer(options);
  const client = await QmpClient.connect(server.socketPath);
  cleanups.push(() => client.close());
  return { server, client };
}

async function rejection(promise: Promise<unknown>): Promise<QmpError> {
  const error: unknown = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  if (!(error instanceof QmpError)) throw new Error(`expected a QmpError, got ${String(error)}`);
  return error;
}

/** A promise plus the function that resolves it, to order the fake's replies. */
function gate(): { opened: Promise<void>; open: () => void } {
  let open = (): void => {};
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { opened, open };
}

describe('QmpClient.connect', () => {
  it('reads the greeting and negotiates capabilities before anything else', async () => {
    const { server, client } = await connected({ handlers: { 'query-status': () => ({ return: { status: 'running' } }) } });

    expect(client.greeting.version).toEqual(fakeQemuVersion);
    expect(client.greeting.capabilities).toEqual(['oob']);
    await client.execute('query-status');
    expect(server.requests.map((request) => request.execute)).toEqual(['qmp_capabilities', 'query-status']);
  });

  it('names the socket and says QEMU may not be running when the socket is missing', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'vmfile-qmp-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const socketPath = path.join(dir, 'qmp.sock');

    const error = await rejection(QmpClient.connect(socketPath));

    expect(error.errorClass).toBe('Disconnected');
    expect(error.message).toContain(socketPath);
    expect(error.message).toContain('ENOENT');
    expect(error.message).toContain('QEMU may not be running');
    expect(error.hint).toBeDefined();
  });

  it('reports ECONNREFUSED the same way when nothing listens on the path', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'vmfile-qmp-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    // Connecting to a path that is not a listening socket is refused on Linux.
    const socketPath = path.join(dir, 'qmp.sock');
    await writeFile(socketPath, '');

    const error = await rejection(QmpClient.connect(socketPath));

    expect(error.errorClass).toBe('Disconnected');
    expect(error.message).toContain(socketPath);
    expect(error.message).toContain('ECONNREFUSED');
    expect(error.message).toContain('QEMU may not be running');
  });

  it('times out when QEMU accepts the connection but never greets', async () => {
    const server = await startServer({ greeting: false });

    const error = await rejection(QmpClient.connect(server.socketPath, { timeoutMs: 100 }));

    expect(error.errorClass).toBe('Timeout');
    expect(error.message).toContain(server.socketPath);
    expect(error.message).toContain('100 ms');
    expect(error.message).toContain('QEMU may not be running');
  });

  it('times out when qmp_capabilities is never answered', async () => {
    const server = await startServer({ handlers: { qmp_capabilities: () => undefined } });

    const error = await rejection(QmpClient.connect(server.socketPath, { timeoutMs: 150 }));

    expect(error.errorClass).toBe('Timeout');
    expect(error.message).toContain(server.socketPath);
  });

  it('rejects with the QMP error when qmp_capabilities is refused', async () => {
    const server = await startServer({
      handlers: { qmp_capabilities: () => ({ error: { class: 'GenericError', desc: 'no thanks' } }) },
    });

    const error = await rejection(QmpClient.connect(server.socketPath));

    expect(error.errorClass).toBe('GenericError');
    expect(error.message).toContain('qmp_capabilities');
    expect(error.message).toContain('no thanks');
  });

  it('rejects with a Protocol error when the socket does not speak QMP', async () => {
    const server = await startServer({ greeting: false });
    void server.connection().then((connection) => connection.writeRaw('SSH-2.0-OpenSSH_9.6\r\n'));

    const error = await rejection(QmpClient.connect(server.socketPath));

    expect(error.errorClass).toBe('Protocol');
    expect(error.message).toContain(server.socketPath);
  });

  it('can be aborted', async () => {
    const server = await startServer({ greeting: false });
    const controller = new AbortController();
    const connecting = QmpClient.connect(server.socketPath, { signal: controller.signal });
    controller.abort();

    expect((await rejection(connecting)).errorClass).toBe('Aborted');
  });
});

describe('QmpClient.execute', () => {
  it('resolves with the return value and sends the arguments', async () => {
    const { server, client } = await connected({
      handlers: { 'query-status': () => ({ return: { status: 'running', running: true } }) },
    });
    server.handle('device_del', () => ({ return: {} }));

    await expect(client.execute('query-status')).resolves.toEqual({ status: 'running', running: true });
    await expect(client.execute('device_del', { id: 'net0' })).resolves.toEqual({});
    expect(server.requests.at(-1)?.arguments).toEqual({ id: 'net0' });
  });

  it('rejects an error reply with a QmpError carrying the class, desc and command', async () => {
    const { client } = await connected({
      handlers: { 'blockdev-del': () => ({ error: { class: 'GenericError', desc: "Node 'disk0' is busy" } }) },
    });

    const error = await rejection(client.execute('blockdev-del', { 'node-name': 'disk0' }));

    expect(error.errorClass).toBe('GenericError');
    expect(error.message).toContain('blockdev-del');
    expect(error.message).toContain("Node 'disk0' is busy");
    expect(error.exitCode).toBe(1);
  });

  it('reports an unknown command with QEMU\'s CommandNotFound class', async () => {
    const { client } = await connected();

    const error = await rejection(client.execute('no-such-command'));

    expect(error.errorClass).toBe('CommandNotFound');
    expect(error.message).toContain('no-such-command');
  });

  it('matches concurrent calls by id when the replies come back out of order', async () => {
    const firstMayReply = gate();
    const { client } = await connected({
      handlers: {
        first: async () => {
          await firstMayReply.opened;
          return { return: 'first result' };
        },
        second: () => {
          // Reply to "second" now and to "first" only after it, on a later tick.
          setImmediate(firstMayReply.open);
          return { return: 'second result' };
        },
      },
    });
    const order: string[] = [];

    const first = client.execute('first').then((value) => {
      order.push('first');
      return value;
    });
    const second = client.execute('second').then((value) => {
      order.push('second');
      return value;
    });

    await expect(Promise.all([first, second])).resolves.toEqual(['first result', 'second result']);
    expect(order).toEqual(['second', 'first']);
  });

  it('delivers events interleaved with a reply without confusing the reply', async () => {
    const { client } = await connected({
      handlers: {
        stop: (_request, connection) => {
          connection.emitEvent('STOP');
          return { return: {} };
        },
        cont: (request, connection) => {
          // An event and the reply in one chunk, then another event after it.
          connection.writeRaw(
            `${JSON.stringify({ event: 'RESUME', timestamp: { seconds: 1, microseconds: 2 } })}\n${JSON.stringify({ return: { resumed: true }, id: request.id })}\n`,
          );
          connection.emitEvent('BLOCK_JOB_READY', { device: 'job0' });
          return undefined;
        },
      },
    });
    const events: QmpEvent[] = [];
    client.onEvent((event) => events.push(event));
    const ready = client.waitForEvent('BLOCK_JOB_READY', { timeoutMs: 2_000 });

    await expect(client.execute('stop')).resolves.toEqual({});
    await expect(client.execute('cont')).resolves.toEqual({ resumed: true });
    await ready;

    expect(events.map((event) => event.event)).toEqual(['STOP', 'RESUME', 'BLOCK_JOB_READY']);
    expect(events[0]?.data).toEqual({});
    expect(events[1]?.timestamp).toEqual({ seconds: 1, microseconds: 2 });
    expect(events[2]?.data).toEqual({ device: 'job0' });
  });

  it('reassembles a reply split across chunks, even inside a UTF-8 character', async () => {
    const { client } = await connected({
      handlers: {
        split: async (request, connection) => {
          const bytes = Buffer.from(`${JSON.stringify({ return: 'héllo ✓', id: request.id })}\n`);
          const insideCheckMark = bytes.indexOf(Buffer.from('✓')) + 1;
          for (const piece of [bytes.subarray(0, 5), bytes.subarray(5, insideCheckMark), bytes.subarray(insideCheckMark)]) {
            connection.writeRaw(piece);
            await sleep(20);
          }
          return undefined;
        },
      },
    });

    await expect(client.execute('split')).resolves.toBe('héllo ✓');
  });

  it('handles two replies arriving in one chunk', async () => {
    const bothAsked = gate();
    const ids: unknown[] = [];
    const { client } = await connected({
      handlers: {
        a: (request) => {
          ids.push(request.id);
          if (ids.length === 2) bothAsked.open();
          return undefined;
        },
        b: async (request, connection) => {
          ids.push(request.id);
          if (ids.length === 2) bothAsked.open();
          await bothAsked.opened;
          const [idA, idB] = ids;
          connection.writeRaw(`${JSON.stringify({ return: 'B', id: idB })}\n${JSON.stringify({ return: 'A', id: idA })}\n`);
          return undefined;
        },
      },
    });

    await expect(Promise.all([client.execute('a'), client.execute('b')])).resolves.toEqual(['A', 'B']);
  });

  it('times out a call that gets no reply, and drops the late reply', async () => {
    const late = gate();
    const { client } = await connected({
      handlers: {
        slow: async () => {
          await late.opened;
          return { return: 'too late' };
        },
        fast: () => ({ return: 'fast' }),
      },
    });

    const error = await rejection(client.execute('slow', undefined, { timeoutMs: 50 }));
    late.open();

    expect(error.errorClass).toBe('Timeout');
    expect(error.message).toContain('slow');
    expect(error.message).toContain('50 ms');
    await expect(client.execute('fast')).resolves.toBe('fast');
  });

  it('rejects with Aborted when the signal fires, and at once if it already has', async () => {
    const { client } = await connected({ handlers: { hang: () => undefined } });
    const controller = new AbortController();

    const pending = client.execute('hang', undefined, { signal: controller.signal });
    controller.abort();

    expect((await rejection(pending)).errorClass).toBe('Aborted');
    expect((await rejection(client.execute('hang', undefined, { signal: controller.signal }))).errorClass).toBe('Aborted');
  });
});

describe('QmpClient.hmp', () => {
  it('runs human-monitor-command and resolves with its text', async () => {
    const { server, client } = await connected({
      handlers: { 'human-monitor-command': () => ({ return: 'VM status: running\r\n' }) },
    });

    await expect(client.hmp('info status')).resolves.toBe('VM status: running\r\n');
    expect(server.requests.at(-1)?.arguments).toEqual({ 'command-line': 'info status' });
  });
});

describe('QmpClient events', () => {
  it('waitForEvent resolves on the first matching event only', async () => {
    const { server, client } = await connected();

    const waiting = client.waitForEvent(['SHUTDOWN', 'POWERDOWN'], { timeoutMs: 2_000 });
    server.emitEvent('STOP');
    server.emitEvent('SHUTDOWN', { guest: true, reason: 'guest-shutdown' });
    server.emitEvent('POWERDOWN');

    const event = await waiting;
    expect(event.event).toBe('SHUTDOWN');
    expect(event.data).toEqual({ guest: true, reason: 'guest-shutdown' });
  });

  it('waitForEvent ignores events that arrived before the call', async () => {
    const { server, client } = await connected({ handlers: { 'query-status': () => ({ return: {} }) } });
    server.emitEvent('STOP');
    // A round trip guarantees the earlier event has been read.
    await client.execute('query-status');

    const error = await rejection(client.waitForEvent('STOP', { timeoutMs: 50 }));

    expect(error.errorClass).toBe('Timeout');
    expect(error.message).toContain('STOP');
  });

  it('waitForEvent can be aborted', async () => {
    const { client } = await connected();
    const controller = new AbortController();

    const waiting = client.waitForEvent('SHUTDOWN', { signal: controller.signal });
    controller.abort(new Error('user pressed Ctrl-C'));

    const error = await rejection(waiting);
    expect(error.errorClass).toBe('Aborted');
    expect(error.cause).toEqual(new Error('user pressed Ctrl-C'));
  });

  it('stops delivering to a listener once unsubscribed', async () => {
    const { server, client } = await connected();
    const seen: string[] = [];
    const unsubscribe = client.onEvent((event) => seen.push(event.event));

    server.emitEvent('STOP');
    await client.waitForEvent('STOP');
    unsubscribe();
    server.emitEvent('RESUME');
    await client.waitForEvent('RESUME');

    expect(seen).toEqual(['STOP']);
  });
});

describe('QmpClient disconnect', () => {
  it('rejects pending calls and waits with Disconnected and resolves closed when QEMU goes away', async () => {
    const { server, client } = await connected({ handlers: { hang: () => undefined } });
    const pending = client.execute('hang');
    const waiting = client.waitForEvent('SHUTDOWN');
    await sleep(20);

    (await server.connection()).close();

    const [callError, waitError] = await Promise.all([rejection(pending), rejection(waiting)]);
    expect(callError.errorClass).toBe('Disconnected');
    expect(callError.message).toContain('hang');
    expect(waitError.errorClass).toBe('Disconnected');
    await expect(client.closed).resolves.toBeUndefined();
    expect((await rejection(client.execute('hang'))).errorClass).toBe('Disconnected');
  });

  it('close() rejects pending calls, resolves closed and can be called twice', async () => {
    const { client } = await connected({ handlers: { hang: () => undefined } });
    const pending = client.execute('hang');

    client.close();
    client.close();

    expect((await rejection(pending)).errorClass).toBe('Disconnected');
    await expect(client.closed).resolves.toBeUndefined();
  });

  it('treats a line that is not JSON as a protocol failure and closes', async () => {
    const { client } = await connected({
      handlers: {
        garbage: (_request, connection) => {
          connection.writeRaw('this is not json\n');
          return undefined;
        },
      },
    });

    const error = await rejection(client.execute('garbage'));

    expect(error.errorClass).toBe('Protocol');
    expect(error.message).toContain('this is not json');
    await client.closed;
  });
});

describe('FakeQmpServer', () => {
  it('refuses commands before qmp_capabilities with CommandNotFound, as QEMU does', async () => {
    const server = await startServer({ handlers: { 'query-status': () => ({ return: {} }) } });
    const socket = net.createConnection(server.socketPath);
    cleanups.push(() => {
      socket.destroy();
    });
    socket.setEncoding('utf8');
    let received = '';
    socket.on('data', (chunk: string) => {
      received += chunk;
    });
    socket.write(`${JSON.stringify({ execute: 'query-status', id: 7 })}\n`);

    await expect.poll(() => received.split('\n').length).toBeGreaterThanOrEqual(3);
    const [greeting, reply] = received.split('\n').map((line): unknown => (line === '' ? undefined : JSON.parse(line)));
    expect(greeting).toMatchObject({ QMP: { version: fakeQemuVersion } });
    expect(reply).toEqual({
      error: { class: 'CommandNotFound', desc: "Expecting capabilities negotiation with 'qmp_capabilities'" },
      id: 7,
    });
  });
});

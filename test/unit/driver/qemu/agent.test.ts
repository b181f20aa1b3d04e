import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { agentChannelOpen, setClockThroughAgent } from '../../../../src/driver/qemu/agent.js';
import { AGENT_CHARDEV } from '../../../../src/qemu/argv.js';
import { tempDir } from '../../temp-dir.js';

interface FakeAgent {
  socket: string;
  received: { execute: string; arguments?: Record<string, unknown> }[];
  close: () => Promise<void>;
}

/**
 * A guest agent as qemu-ga answers: stale bytes first (a half message from before a
 * restore), 0xFF before the guest-sync-delimited reply, then one JSON line per command.
 */
async function fakeAgent(behaviour: { silent?: boolean; exitcode?: number; runs?: number; beforeReply?: Buffer; endless?: boolean } = {}): Promise<FakeAgent> {
  const socket = join(await tempDir(), 'qga.sock');
  const received: FakeAgent['received'] = [];
  let polls = 0;
  const reply = (client: Socket, value: unknown) => client.write(`${JSON.stringify({ return: value })}\n`);
  const server: Server = createServer((client) => {
    // A client that gave up on a flood closes while it is still being written to.
    client.on('error', () => undefined);
    client.write('{"return": {"half a re');
    let buffer = '';
    client.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      for (let end = buffer.indexOf('\n'); end !== -1; end = buffer.indexOf('\n')) {
        const command = JSON.parse(buffer.slice(0, end)) as FakeAgent['received'][number];
        buffer = buffer.slice(end + 1);
        received.push(command);
        if (behaviour.silent === true) continue;
        if (command.execute === 'guest-sync-delimited') {
          client.write(Buffer.from([0xff]));
          if (behaviour.beforeReply !== undefined) client.write(behaviour.beforeReply);
          if (behaviour.endless === true) {
            // One line that never ends, for as long as the client listens.
            const more = (): void => void (client.destroyed || client.write(Buffer.alloc(65_536, 0x78), more));
            more();
            continue;
          }
          reply(client, command.arguments?.['id']);
        } else if (command.execute === 'guest-exec') reply(client, { pid: 4242 });
        else if (command.execute === 'guest-exec-status') {
          polls++;
          reply(client, polls < (behaviour.runs ?? 1) ? { exited: false } : { exited: true, exitcode: behaviour.exitcode ?? 0 });
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  return { socket, received, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

const agents: FakeAgent[] = [];
afterEach(async () => {
  for (const agent of agents.splice(0)) await agent.close();
});

describe('setClockThroughAgent', () => {
  test("syncs past stale bytes, runs date -u -s with the host's time, and waits for it to exit 0", async () => {
    const agent = await fakeAgent({ runs: 3 });
    agents.push(agent);
    const before = Date.now() / 1000;
    expect(await setClockThroughAgent(agent.socket, 2000)).toBe(true);
    const [sync, exec, ...polls] = agent.received;
    expect(sync?.execute).toBe('guest-sync-delimited');
    expect(exec).toMatchObject({ execute: 'guest-exec', arguments: { path: '/bin/date', arg: ['-u', '-s', expect.stringMatching(/^@\d+\.\d{3}$/)] } });
    const seconds = Number(String((exec?.arguments?.['arg'] as string[])[2]).slice(1));
    expect(seconds).toBeGreaterThanOrEqual(Math.floor(before));
    expect(seconds).toBeLessThanOrEqual(Date.now() / 1000);
    expect(polls.map((poll) => poll.execute)).toEqual(['guest-exec-status', 'guest-exec-status', 'guest-exec-status']);
    expect(polls[0]?.arguments).toEqual({ pid: 4242 });
  });

  test('false when date fails in the guest', async () => {
    const agent = await fakeAgent({ exitcode: 1 });
    agents.push(agent);
    expect(await setClockThroughAgent(agent.socket, 2000)).toBe(false);
  });

  test('false, by the deadline, when nothing in the guest answers (memory saved before the agent was there)', async () => {
    const agent = await fakeAgent({ silent: true });
    agents.push(agent);
    const started = Date.now();
    expect(await setClockThroughAgent(agent.socket, 300)).toBe(false);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(agent.received.map((command) => command.execute)).toEqual(['guest-sync-delimited']);
  });

  test('false when there is no channel at all', async () => {
    expect(await setClockThroughAgent(join(await tempDir(), 'absent.sock'), 300)).toBe(false);
  });

  test('a guest that floods the channel with empty lines is read past, without exhausting the stack', async () => {
    const agent = await fakeAgent({ beforeReply: Buffer.alloc(2_000_000, 0x0a) });
    agents.push(agent);
    expect(await setClockThroughAgent(agent.socket, 5000)).toBe(true);
  });

  test('a line that never ends is given up at a bound, long before the deadline, rather than kept in memory', async () => {
    const agent = await fakeAgent({ endless: true });
    agents.push(agent);
    const started = Date.now();
    expect(await setClockThroughAgent(agent.socket, 5000)).toBe(false);
    expect(Date.now() - started).toBeLessThan(2000);
  });
});

describe('whether the guest has opened the agent channel', () => {
  const qmp = (reply: unknown) => ({ execute: async <T>() => reply as T });
  test("read from query-chardev's frontend-open of the agent chardev", async () => {
    expect(await agentChannelOpen(qmp([{ label: 'serial0', 'frontend-open': true }, { label: AGENT_CHARDEV, 'frontend-open': false }]))).toBe(false);
    expect(await agentChannelOpen(qmp([{ label: AGENT_CHARDEV, 'frontend-open': true }]))).toBe(true);
  });
  test('undefined when QEMU does not say', async () => {
    expect(await agentChannelOpen(qmp([{ label: 'serial0', 'frontend-open': true }]))).toBeUndefined();
    expect(await agentChannelOpen(qmp({ nonsense: 1 }))).toBeUndefined();
  });
});

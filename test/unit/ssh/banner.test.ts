import { createServer, type AddressInfo, type Server } from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { waitForSshGreeting } from '../../../src/ssh/banner.js';

const servers: Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await new Promise((resolve) => server.close(resolve));
});

async function listen(onConnection: (socket: import('node:net').Socket, count: number) => void): Promise<number> {
  let count = 0;
  const server = createServer((socket) => onConnection(socket, ++count));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

describe('waitForSshGreeting', () => {
  test("true once a server's greeting arrives, after connections that closed without one", async () => {
    const port = await listen((socket, count) => (count < 3 ? socket.destroy() : socket.write('SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n')));
    expect(await waitForSshGreeting(port, Date.now() + 5000)).toBe(true);
  });

  test('false at the deadline when what answers is not SSH', async () => {
    const port = await listen((socket) => socket.write('HTTP/1.1 400 Bad Request\r\n\r\n'));
    const started = Date.now();
    expect(await waitForSshGreeting(port, Date.now() + 400)).toBe(false);
    expect(Date.now() - started).toBeLessThan(2000);
  });
});

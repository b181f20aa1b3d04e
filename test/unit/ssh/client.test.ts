import net from 'node:net';
import { utils } from 'ssh2';
import { afterEach, describe, expect, test } from 'vitest';
import { describeFailure, GuestError } from '../../../src/errors.js';
import { SshConnectError, SshSession } from '../../../src/ssh/client.js';

const servers: net.Server[] = [];
afterEach(() => {
  for (const server of servers.splice(0)) server.close();
});

/** A TCP port that accepts and then resets, as QEMU's forward does while the guest's sshd is down. */
async function resettingPort(): Promise<number> {
  const server = net.createServer((socket) => socket.resetAndDestroy());
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as net.AddressInfo).port;
}

describe('SshSession.connect', () => {
  test('an sshd that is down is a GuestError naming the machine (exit 1), not a bare ssh2 error', async () => {
    const port = await resettingPort();
    const error = await SshSession.connect({ label: 'machine "web"', host: '127.0.0.1', port, user: 'vm', privateKey: utils.generateKeyPairSync('ed25519').private, hostKey: Buffer.alloc(0) }, 3000).catch(
      (reason: unknown) => reason,
    );
    expect(error).toBeInstanceOf(SshConnectError);
    expect(error).toBeInstanceOf(GuestError);
    expect((error as GuestError).message).toMatch(new RegExp(`^machine "web": cannot log in over SSH on 127\\.0\\.0\\.1:${port} \\(`));
    const printed = describeFailure(error, false);
    expect(printed.exitCode).toBe(1);
    expect(printed.text).not.toContain('internal error');
    expect(printed.text).toContain("hint: check that the guest's sshd runs");
  });

  test('a login key that cannot be parsed is a GuestError naming the machine, not a crash', async () => {
    const error = await SshSession.connect({ label: 'machine "web"', host: '127.0.0.1', port: 1, user: 'vm', privateKey: 'not a key', hostKey: Buffer.alloc(0) }).catch((reason: unknown) => reason);
    expect(error).toBeInstanceOf(GuestError);
    expect((error as GuestError).message).toContain('machine "web": its SSH login key cannot be used');
  });
});

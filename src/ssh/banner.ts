/**
 * Whether an SSH server answers on a local port, by its greeting alone ("SSH-2.0-..."),
 * without a key exchange: after a snapshot restore whose clock the guest agent set,
 * this is all that is left to know. A connection that closes or sends nothing is tried
 * again until the deadline.
 */
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export async function waitForSshGreeting(port: number, deadline: number): Promise<boolean> {
  while (Date.now() < deadline) {
    if (await greeting(port, deadline)) return true;
    await sleep(50);
  }
  return false;
}

function greeting(port: number, deadline: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let received = '';
    const finish = (answered: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(answered);
    };
    const timer = setTimeout(() => finish(false), Math.max(0, deadline - Date.now()));
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      received += chunk;
      if (/^SSH-2\.0-[^\r\n]*\r?\n/m.test(received)) finish(true);
      else if (received.length > 8192) finish(false);
    });
    socket.on('error', () => finish(false));
    socket.on('close', () => finish(false));
  });
}

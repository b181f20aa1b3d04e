/**
 * The switch of one project's private network under the built-in driver: one hub
 * process per project, found by its socket, started by whichever vmup needs it first.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { networkLock, networkSocket } from '../store/layout.js';
import { withLock } from '../store/lock.js';
import { ensureSocketDir } from '../store/socket.js';
import { ensureHub } from './hub.js';

/** The switch every machine's private NIC connects to; QEMU starts without it, with a dead link, so it must run first. */
export async function startNetwork(projectDir: string): Promise<string> {
  const socket = networkSocket(projectDir);
  await ensureSocketDir(socket);
  // Two vmups of one project at once must not start two switches (the network would split).
  await withLock(networkLock(projectDir), `the private network of ${projectDir}`, 'start the network switch', () =>
    ensureHub(socket, join(dirname(fileURLToPath(import.meta.url)), 'hub-main.js')),
    { waitMs: 15_000 },
  );
  return socket;
}

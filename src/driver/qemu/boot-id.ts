/**
 * A new boot ID for a guest started from a warm state, written into its memory before it
 * runs, through QEMU's gdbstub.
 *
 * Linux makes /proc/sys/kernel/random/boot_id on its first read and refuses writes to it,
 * and systemd reads it early in every boot, so every machine started from one saved
 * memory would report the same boot. The host owns that memory, though. The warm state
 * records where the kernel keeps the ID (a guest-physical address, guest/boot-id.ts) and
 * the ID it held. QEMU is started with a gdbstub on a Unix socket in the machine's private
 * directory; once the state is loaded, and while the guest is still paused, vmfile speaks
 * the GDB remote protocol to it: physical addressing on (QEMU's `Qqemu.PhyMemMode`), read
 * the 16 bytes and check they are the recorded ID, write a new random (version 4) UUID
 * over them, read it back. The gdbstub is then closed, and only then does the guest go on.
 *
 * The check before the write is the safety: memory that does not hold the recorded ID at
 * that address is never written, and the state is refused instead.
 */
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import net from 'node:net';
import type { QmpClient } from '../../qmp/client.js';
import type { BootIdLocation } from '../../store/machine.js';

const REPLY_TIMEOUT_MS = 5_000;

/** Writes a new boot ID over the recorded one; returns it (32 hex digits). */
export async function replaceBootId(qmp: QmpClient, socket: string, location: BootIdLocation): Promise<string> {
  const fresh = randomUUID().replaceAll('-', '');
  const at = location.address.toString(16);
  const gdb = await GdbStub.connect(socket);
  try {
    expectOk(await gdb.request('Qqemu.PhyMemMode:1'), 'switch to physical addresses');
    const found = await gdb.request(`m${at},10`);
    if (found !== location.value) {
      throw new Error(`the saved memory holds ${found === '' ? 'nothing readable' : found} at guest-physical address 0x${at}, where its record says the boot ID ${location.value} is`);
    }
    expectOk(await gdb.request(`M${at},10:${fresh}`), 'write the new boot ID');
    const written = await gdb.request(`m${at},10`);
    if (written !== fresh) throw new Error(`the new boot ID did not stay written at 0x${at} (read back ${written})`);
    return fresh;
  } finally {
    gdb.close();
    await qmp.hmp('gdbserver none');
    await rm(socket, { force: true });
  }
}

function expectOk(reply: string, what: string): void {
  if (reply !== 'OK') throw new Error(`QEMU's gdbstub could not ${what} (${reply === '' ? 'not supported' : reply})`);
}

/** A GDB remote protocol conversation, one request at a time. */
class GdbStub {
  #buffer = '';
  #waiting: { resolve(reply: string): void; reject(error: Error): void } | undefined;
  #failure: Error | undefined;

  private constructor(private readonly socket: net.Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => this.#receive(chunk));
    socket.on('error', (error) => this.#fail(error));
    socket.on('close', () => this.#fail(new Error("QEMU's gdbstub closed the connection")));
  }

  static connect(path: string): Promise<GdbStub> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(path);
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new GdbStub(socket));
      });
    });
  }

  request(packet: string): Promise<string> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.#fail(new Error(`QEMU's gdbstub did not answer "${packet.slice(0, 24)}" within ${REPLY_TIMEOUT_MS / 1000} s`)), REPLY_TIMEOUT_MS);
      this.#waiting = {
        resolve: (reply) => (clearTimeout(timer), resolve(reply)),
        reject: (error) => (clearTimeout(timer), reject(error)),
      };
      this.socket.write(`$${packet}#${checksum(packet)}`);
    });
  }

  close(): void {
    this.socket.destroy();
  }

  #receive(chunk: string): void {
    this.#buffer += chunk;
    for (;;) {
      const match = /\$([^#$]*)#([0-9a-f]{2})/.exec(this.#buffer);
      if (match === null) return;
      this.#buffer = this.#buffer.slice(match.index + match[0].length);
      const [, body = '', sum] = match;
      if (checksum(body) !== sum) {
        this.socket.write('-');
        continue;
      }
      this.socket.write('+');
      // A stop reply (the guest halted for the debugger): sent on connecting, not an answer.
      if (/^[ST][0-9a-f]{2}/.test(body)) continue;
      const waiting = this.#waiting;
      this.#waiting = undefined;
      waiting?.resolve(body);
    }
  }

  #fail(error: Error): void {
    this.#failure ??= error;
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.reject(error);
  }
}

function checksum(body: string): string {
  let sum = 0;
  for (let i = 0; i < body.length; i++) sum = (sum + body.charCodeAt(i)) % 256;
  return sum.toString(16).padStart(2, '0');
}

import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { replaceBootId } from '../../../../src/driver/qemu/boot-id.js';
import type { QmpClient } from '../../../../src/qmp/client.js';
import { tempDir } from '../../temp-dir.js';

const SAVED = '3223fe1755fb4fe48183604d0dfe0f13';
const ADDRESS = 0x22002830;

const sum = (body: string) => ([...body].reduce((total, char) => total + char.charCodeAt(0), 0) % 256).toString(16).padStart(2, '0');

/**
 * A gdbstub as QEMU's answers it: a stop reply on connecting, '+' before each answer,
 * m/M on 16 bytes of "physical memory" at ADDRESS once physical mode is on.
 */
async function fakeStub(options: { memory: string; physicalMode?: boolean }): Promise<{ socket: string; received: string[]; memory: () => string; close: () => Promise<void> }> {
  const socket = join(await tempDir(), 'gdb.sock');
  const received: string[] = [];
  let memory = options.memory;
  let physical = false;
  const answer = (client: Socket, body: string) => client.write(`+$${body}#${sum(body)}`);
  const server: Server = createServer((client) => {
    client.setEncoding('latin1');
    client.write(`$T02thread:01;#${sum('T02thread:01;')}`);
    let buffer = '';
    client.on('data', (chunk: string) => {
      buffer += chunk;
      for (let match = /\$([^#]*)#([0-9a-f]{2})/.exec(buffer); match !== null; match = /\$([^#]*)#([0-9a-f]{2})/.exec(buffer)) {
        buffer = buffer.slice(match.index + match[0].length);
        const body = match[1] ?? '';
        expect(match[2]).toBe(sum(body));
        received.push(body);
        const at = `${ADDRESS.toString(16)},10`;
        if (body === 'Qqemu.PhyMemMode:1') {
          physical = options.physicalMode !== false;
          answer(client, physical ? 'OK' : '');
        } else if (body === `m${at}`) answer(client, physical ? memory : 'E14');
        else if (body.startsWith(`M${at}:`) && physical) {
          memory = body.slice(`M${at}:`.length);
          answer(client, 'OK');
        } else answer(client, 'E22');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  return { socket, received, memory: () => memory, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

function fakeQmp(): { qmp: QmpClient; hmp: string[] } {
  const hmp: string[] = [];
  return { qmp: { hmp: async (line: string) => (hmp.push(line), '') } as unknown as QmpClient, hmp };
}

const stubs: { close: () => Promise<void> }[] = [];
afterEach(async () => {
  for (const stub of stubs.splice(0)) await stub.close();
});

describe('replaceBootId', () => {
  test('writes a new version 4 UUID over the recorded ID, reads it back, and closes the gdbstub', async () => {
    const stub = await fakeStub({ memory: SAVED });
    stubs.push(stub);
    const { qmp, hmp } = fakeQmp();
    const fresh = await replaceBootId(qmp, stub.socket, { address: ADDRESS, value: SAVED });
    expect(fresh).toMatch(/^[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}$/);
    expect(fresh).not.toBe(SAVED);
    expect(stub.memory()).toBe(fresh);
    expect(stub.received[0]).toBe('Qqemu.PhyMemMode:1');
    expect(hmp).toEqual(['gdbserver none']);
  });

  test('memory that does not hold the recorded ID is never written', async () => {
    const other = '00112233445566778899aabbccddeeff';
    const stub = await fakeStub({ memory: other });
    stubs.push(stub);
    const { qmp, hmp } = fakeQmp();
    await expect(replaceBootId(qmp, stub.socket, { address: ADDRESS, value: SAVED })).rejects.toThrow(/holds 00112233445566778899aabbccddeeff at guest-physical address 0x22002830, where its record says the boot ID 3223fe17/);
    expect(stub.memory()).toBe(other);
    expect(stub.received.some((body) => body.startsWith('M'))).toBe(false);
    expect(hmp).toEqual(['gdbserver none']);
  });

  test('a gdbstub without physical addressing is refused before anything is read or written', async () => {
    const stub = await fakeStub({ memory: SAVED, physicalMode: false });
    stubs.push(stub);
    const { qmp } = fakeQmp();
    await expect(replaceBootId(qmp, stub.socket, { address: ADDRESS, value: SAVED })).rejects.toThrow(/could not switch to physical addresses \(not supported\)/);
    expect(stub.received).toEqual(['Qqemu.PhyMemMode:1']);
    expect(stub.memory()).toBe(SAVED);
  });
});

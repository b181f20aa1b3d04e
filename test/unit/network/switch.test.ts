import { describe, expect, it } from 'vitest';
import { EthernetSwitch, FrameDecoder, FramingError, MAX_FRAME_BYTES, encodeFrame, type Port } from '../../../src/network/switch.js';

const BROADCAST = 'ff:ff:ff:ff:ff:ff';
const MULTICAST = '33:33:00:00:00:01';

/** An Ethernet frame: destination, source, EtherType 0x0800, a payload naming it. */
function frame(destination: string, source: string, payload = `${source}->${destination}`): Buffer {
  const mac = (text: string): Buffer => Buffer.from(text.replaceAll(':', ''), 'hex');
  return Buffer.concat([mac(destination), mac(source), Buffer.from([0x08, 0x00]), Buffer.from(payload)]);
}

/** A switch with named ports; each port records what the switch sent it. */
function lab(names: readonly string[]): { ethernet: EthernetSwitch; ports: Map<string, Port>; got: Map<string, string[]> } {
  const ethernet = new EthernetSwitch();
  const ports = new Map<string, Port>();
  const got = new Map<string, string[]>();
  for (const name of names) {
    const inbox: string[] = [];
    got.set(name, inbox);
    ports.set(name, ethernet.addPort((sent) => inbox.push(sent.subarray(14).toString())));
  }
  return { ethernet, ports, got };
}

function port(ports: Map<string, Port>, name: string): Port {
  const found = ports.get(name);
  if (found === undefined) throw new Error(`no port ${name}`);
  return found;
}

const A = '52:54:00:00:00:0a';
const B = '52:54:00:00:00:0b';
const C = '52:54:00:00:00:0c';

describe('EthernetSwitch', () => {
  // Each case: frames sent in order as [from port, destination, source]; what each port got.
  it.each([
    {
      name: 'floods an unknown unicast to every other port',
      sends: [['a', B, A]],
      expected: { a: [], b: [`${A}->${B}`], c: [`${A}->${B}`] },
    },
    {
      name: 'sends unicast only to the learned port once the destination has spoken',
      sends: [
        ['b', BROADCAST, B],
        ['a', B, A],
      ],
      expected: { a: [`${B}->${BROADCAST}`], b: [`${A}->${B}`], c: [`${B}->${BROADCAST}`] },
    },
    {
      name: 'floods broadcast to all but the sender even when everything is learned',
      sends: [
        ['a', BROADCAST, A],
        ['b', BROADCAST, B],
        ['c', BROADCAST, C],
        ['a', BROADCAST, A],
      ],
      expected: {
        a: [`${B}->${BROADCAST}`, `${C}->${BROADCAST}`],
        b: [`${A}->${BROADCAST}`, `${C}->${BROADCAST}`, `${A}->${BROADCAST}`],
        c: [`${A}->${BROADCAST}`, `${B}->${BROADCAST}`, `${A}->${BROADCAST}`],
      },
    },
    {
      name: 'floods multicast',
      sends: [
        ['b', BROADCAST, B],
        ['a', MULTICAST, A],
      ],
      expected: { a: [`${B}->${BROADCAST}`], b: [`${A}->${MULTICAST}`], c: [`${B}->${BROADCAST}`, `${A}->${MULTICAST}`] },
    },
    {
      name: 'drops a frame for a MAC learned on the sending port',
      sends: [
        ['a', BROADCAST, C],
        ['a', C, A],
      ],
      expected: { a: [], b: [`${C}->${BROADCAST}`], c: [`${C}->${BROADCAST}`] },
    },
    {
      name: 're-learns a MAC that moves to another port',
      sends: [
        ['a', BROADCAST, C],
        ['c', BROADCAST, C],
        ['b', C, B],
      ],
      expected: { a: [`${C}->${BROADCAST}`], b: [`${C}->${BROADCAST}`, `${C}->${BROADCAST}`], c: [`${C}->${BROADCAST}`, `${B}->${C}`] },
    },
  ])('$name', ({ sends, expected }) => {
    const { ports, got } = lab(['a', 'b', 'c']);
    for (const [from = '', destination = '', source = ''] of sends) port(ports, from).receive(frame(destination, source));
    expect(Object.fromEntries(got)).toEqual(expected);
  });

  it('never learns a multicast source', () => {
    const { ethernet, ports } = lab(['a', 'b']);
    port(ports, 'a').receive(frame(BROADCAST, MULTICAST));
    expect([...ethernet.learned().keys()]).toEqual([]);
  });

  it('ignores frames too short to carry two MACs', () => {
    const { ports, got } = lab(['a', 'b']);
    port(ports, 'a').receive(Buffer.alloc(11, 0xff));
    expect(got.get('b')).toEqual([]);
  });

  it('forgets the MACs of a closed port and floods to the remaining ports', () => {
    const { ethernet, ports, got } = lab(['a', 'b', 'c']);
    port(ports, 'b').receive(frame(BROADCAST, B));
    port(ports, 'c').receive(frame(BROADCAST, C));
    port(ports, 'b').close();

    expect([...ethernet.learned().keys()]).toEqual([C]);
    expect(ethernet.portCount).toBe(2);
    port(ports, 'a').receive(frame(B, A));
    expect(got.get('c')).toEqual([`${B}->${BROADCAST}`, `${A}->${B}`]);
    expect(got.get('b')).toEqual([`${C}->${BROADCAST}`]);
  });

  it('ignores frames from a closed port and a second close', () => {
    const { ethernet, ports, got } = lab(['a', 'b']);
    port(ports, 'a').close();
    port(ports, 'a').close();
    port(ports, 'a').receive(frame(BROADCAST, A));
    expect(got.get('b')).toEqual([]);
    expect(ethernet.learned().size).toBe(0);
  });
});

describe('FrameDecoder', () => {
  const one = Buffer.from('first frame');
  const two = Buffer.from('second');
  const stream = Buffer.concat([encodeFrame(one), encodeFrame(two), encodeFrame(Buffer.alloc(0))]);

  it.each([
    { name: 'one chunk holding several frames', cuts: [] },
    { name: 'a cut inside the length prefix', cuts: [2] },
    { name: 'a cut right after the length prefix', cuts: [4] },
    { name: 'a cut inside the frame', cuts: [9] },
    { name: 'a cut on a frame boundary', cuts: [4 + one.length] },
    { name: 'one byte at a time', cuts: Array.from({ length: stream.length - 1 }, (_, index) => index + 1) },
  ])('decodes $name', ({ cuts }) => {
    const decoder = new FrameDecoder();
    const frames: string[] = [];
    for (const [index, end] of [...cuts, stream.length].entries()) {
      frames.push(...decoder.push(stream.subarray(cuts[index - 1] ?? 0, end)).map((decoded) => decoded.toString()));
    }
    expect(frames).toEqual(['first frame', 'second', '']);
    expect(decoder.pendingBytes).toBe(0);
  });

  it('keeps a partial frame until the rest arrives', () => {
    const decoder = new FrameDecoder();
    expect(decoder.push(encodeFrame(one).subarray(0, 7))).toEqual([]);
    expect(decoder.pendingBytes).toBe(7);
  });

  it('accepts the largest frame and rejects one byte more, then stays failed', () => {
    const decoder = new FrameDecoder();
    expect(decoder.push(encodeFrame(Buffer.alloc(MAX_FRAME_BYTES)))).toHaveLength(1);

    const oversize = Buffer.alloc(4);
    oversize.writeUInt32BE(MAX_FRAME_BYTES + 1, 0);
    expect(() => decoder.push(oversize)).toThrow(FramingError);
    expect(() => decoder.push(encodeFrame(one))).toThrow(/not sending QEMU stream framing/);
  });

  it('rejects an absurd length before its frame arrives', () => {
    expect(() => new FrameDecoder().push(Buffer.from('GET / HTTP/1.1\r\n'))).toThrow(FramingError);
  });
});

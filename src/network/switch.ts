/**
 * The core of vmfile's private network: a learning Ethernet switch and the framing
 * QEMU's stream netdev speaks. No sockets here; src/network/hub.ts wires them up.
 *
 * Framing: QEMU's `-netdev stream` (net/stream.c, 7.2) and `-netdev socket` (net/socket.c)
 * send every Ethernet frame as a 4-byte big-endian length followed by the frame.
 * Checked against QEMU 7.2.22 with two Debian guests on 2026-11-23.
 */

/** One switch port. `receive` feeds a frame the port's peer sent; `close` detaches it. */
export interface Port {
  /** Learns the frame's source MAC for this port and forwards the frame. Ignored after close. */
  receive(frame: Buffer): void;
  /** Detaches the port and forgets every MAC learned on it. Repeated calls do nothing. */
  close(): void;
}

/** The smallest frame that has destination and source MACs. */
const MAC_HEADER_BYTES = 12;

/**
 * A learning switch for a handful of machines. Unicast goes to the port that last sent
 * from the destination MAC; broadcast, multicast and unknown destinations flood to all
 * other ports. Nothing ages out (networks are a few machines); a closed port's MACs are
 * forgotten at once, so a machine that reconnects on a new port is re-learned from its
 * first frame.
 */
export class EthernetSwitch {
  readonly #ports = new Set<SwitchPort>();
  /** MAC (12 hex digits, lower case) -> the port it was last seen on. */
  readonly #table = new Map<string, SwitchPort>();

  addPort(send: (frame: Buffer) => void): Port {
    const port: SwitchPort = {
      send,
      receive: (frame) => this.#forward(port, frame),
      close: () => this.#remove(port),
    };
    this.#ports.add(port);
    return port;
  }

  get portCount(): number {
    return this.#ports.size;
  }

  /** Each learned MAC (aa:bb:cc:dd:ee:ff) and the port it was learned on; for tests and debugging. */
  learned(): Map<string, Port> {
    return new Map([...this.#table].map(([mac, port]) => [formatMac(mac), port]));
  }

  #forward(from: SwitchPort, frame: Buffer): void {
    if (!this.#ports.has(from) || frame.length < MAC_HEADER_BYTES) return;
    const destination = frame.toString('hex', 0, 6);
    const source = frame.toString('hex', 6, 12);
    // A multicast source is not a station; never learn it.
    if (!isGroupAddress(frame, 6)) this.#table.set(source, from);
    const target = isGroupAddress(frame, 0) ? undefined : this.#table.get(destination);
    if (target === from) return;
    if (target !== undefined) {
      target.send(frame);
      return;
    }
    for (const port of this.#ports) if (port !== from) port.send(frame);
  }

  #remove(port: SwitchPort): void {
    if (!this.#ports.delete(port)) return;
    for (const [mac, owner] of this.#table) if (owner === port) this.#table.delete(mac);
  }
}

interface SwitchPort extends Port {
  send(frame: Buffer): void;
}

/** Bit 0 of the first octet marks group (multicast and broadcast) addresses. */
function isGroupAddress(frame: Buffer, offset: number): boolean {
  return ((frame[offset] ?? 0) & 0x01) === 1;
}

function formatMac(hex: string): string {
  return hex.replace(/(..)(?!$)/g, '$1:');
}

/** Thrown by FrameDecoder when the stream cannot be QEMU's framing. */
export class FramingError extends Error {
  override readonly name = 'FramingError';
}

/**
 * Largest frame accepted. QEMU's own limit is NET_BUFSIZE (4096 + 65536); a jumbo
 * frame with virtio-net offloads stays under 64 KiB plus headers. Anything larger
 * means the peer is not speaking this framing.
 */
export const MAX_FRAME_BYTES = 65_536 + 4_096;

/**
 * Splits QEMU's stream (4-byte big-endian length, then the frame) into frames.
 * Chunks may end anywhere, including inside the length. After a FramingError the
 * decoder stays failed: the stream has no way to resynchronise.
 */
export class FrameDecoder {
  #pending: Buffer = Buffer.alloc(0);
  #failed: FramingError | undefined;

  /** Returns the frames completed by this chunk, in order. */
  push(chunk: Buffer): Buffer[] {
    if (this.#failed !== undefined) throw this.#failed;
    let buffer = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    const frames: Buffer[] = [];
    while (buffer.length >= 4) {
      const length = buffer.readUInt32BE(0);
      if (length > MAX_FRAME_BYTES) {
        this.#failed = new FramingError(
          `frame length ${length} exceeds ${MAX_FRAME_BYTES} bytes: the peer is not sending QEMU stream framing`,
        );
        this.#pending = Buffer.alloc(0);
        throw this.#failed;
      }
      if (buffer.length < 4 + length) break;
      // Copy, so a frame kept by a slow consumer does not pin the whole chunk.
      frames.push(Buffer.from(buffer.subarray(4, 4 + length)));
      buffer = buffer.subarray(4 + length);
    }
    this.#pending = Buffer.from(buffer);
    return frames;
  }

  /** Bytes received that do not yet make a whole frame. */
  get pendingBytes(): number {
    return this.#pending.length;
  }
}

/** The wire form of one frame: length prefix plus frame. */
export function encodeFrame(frame: Buffer): Buffer {
  const header = Buffer.alloc(4);
  header.writeUInt32BE(frame.length, 0);
  return Buffer.concat([header, frame]);
}

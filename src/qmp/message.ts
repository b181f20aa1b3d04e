/**
 * The QMP wire format, apart from any connection: newline-delimited JSON messages, and
 * what a greeting, an event and a reply look like. Pure; anything malformed parses to
 * undefined and the client decides what that means.
 */
export interface QmpEvent {
  event: string;
  data: Record<string, unknown>;
  timestamp: { seconds: number; microseconds: number };
}

/** What QEMU announces on connect. */
export interface QmpGreeting {
  version: { qemu: { major: number; minor: number; micro: number }; package: string };
  /** Optional protocol features QEMU offers (e.g. "oob"); vmfile enables none. */
  capabilities: readonly string[];
}

export type Reply = { ok: true; value: unknown } | { ok: false; errorClass: string; desc: string };

/** Splits a byte stream into newline-terminated messages, keeping any partial tail. */
export class LineBuffer {
  #pending = '';

  push(chunk: string): string[] {
    this.#pending += chunk;
    const lines = this.#pending.split('\n');
    this.#pending = lines.pop() ?? '';
    return lines.map((line) => line.trim()).filter((line) => line !== '');
  }
}

export function parseGreeting(message: Record<string, unknown>): QmpGreeting | undefined {
  const qmp = message['QMP'];
  if (!isRecord(qmp)) return undefined;
  const version = qmp['version'];
  if (!isRecord(version)) return undefined;
  const qemu = version['qemu'];
  const pkg = version['package'];
  if (!isRecord(qemu) || typeof pkg !== 'string') return undefined;
  const { major, minor, micro } = qemu;
  if (typeof major !== 'number' || typeof minor !== 'number' || typeof micro !== 'number') return undefined;
  const capabilities = qmp['capabilities'];
  return {
    version: { qemu: { major, minor, micro }, package: pkg },
    capabilities: Array.isArray(capabilities) ? capabilities.filter((c): c is string => typeof c === 'string') : [],
  };
}

export function parseEvent(message: Record<string, unknown>): QmpEvent | undefined {
  const { event, data, timestamp } = message;
  if (typeof event !== 'string' || !isRecord(timestamp)) return undefined;
  const { seconds, microseconds } = timestamp;
  if (typeof seconds !== 'number' || typeof microseconds !== 'number') return undefined;
  // QEMU omits "data" for events that carry none (STOP, RESUME...).
  if (data !== undefined && !isRecord(data)) return undefined;
  return { event, data: data ?? {}, timestamp: { seconds, microseconds } };
}

export function parseReply(message: Record<string, unknown>): Reply | undefined {
  if ('return' in message) return { ok: true, value: message['return'] };
  const error = message['error'];
  if (!isRecord(error)) return undefined;
  const errorClass = error['class'];
  const desc = error['desc'];
  if (typeof errorClass !== 'string' || typeof desc !== 'string') return undefined;
  return { ok: false, errorClass, desc };
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}


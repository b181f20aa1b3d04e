/**
 * Where a box is downloaded from, as the Vmfile, box.json, Vmfile.lock and catalogs
 * spell it: http(s) URLs and checksums ("sha256:HEX"). Pure: these are rules on text,
 * applied to untrusted input (a catalog, a lock file from a repository) before any of it
 * reaches a request or a message.
 */
import { z } from 'zod';

/** Longer URLs are refused: no real box or catalog needs one, and they flood messages. */
export const MAX_URL_LENGTH = 2048;

/**
 * A URL vmfile may download from: http or https, with a host, printable ASCII only (no
 * spaces or control characters, which could forge lines in messages and logs; anything
 * else must be percent-encoded).
 */
export function checkHttpUrl(text: string): string | undefined {
  if (text.length > MAX_URL_LENGTH) return `a URL of at most ${MAX_URL_LENGTH} characters, not ${text.length}`;
  if (!/^[\x21-\x7e]+$/.test(text)) return 'a URL without spaces or control characters (percent-encode them)';
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return 'an absolute http:// or https:// URL';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `an http:// or https:// URL, not ${url.protocol}`;
  if (url.hostname === '') return 'a URL with a host';
  return undefined;
}

/**
 * The URL as it may be shown or stored: a user name and password in it
 * (`https://user:token@host/…`) become `***`. They are sent with the request and nowhere
 * else: never printed, never written to box.json, Vmfile.lock or a download's record.
 * Works on text that is not a valid URL too (it may be in the message saying so); a URL
 * without credentials comes back exactly as it was written.
 */
export function redactUrl(text: string): string {
  // The authority runs to the first "/", "?", "#" or (as URL parsers read http) "\"; its last "@" ends the credentials.
  return text.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^/?#\\]*@/, '$1***@');
}

/** Whether `redactUrl` took credentials out of this URL: it can no longer be asked for what they opened. */
export function hasRedactedCredentials(text: string): boolean {
  return /^[A-Za-z][A-Za-z0-9+.-]*:\/\/\*\*\*@/.test(text);
}

export function isHttpUrl(text: string): boolean {
  return checkHttpUrl(text) === undefined;
}

export const httpUrlSchema = z.string({ error: 'expected an http:// or https:// URL' }).superRefine((text, ctx) => {
  const problem = checkHttpUrl(text);
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: `expected ${problem}` });
});

/**
 * Checksums vmfile verifies: the SHA-2 family. Vagrant catalogs also allow md5 and
 * sha1; vmfile refuses those rather than call a box verified by a broken hash.
 */
export const CHECKSUM_ALGORITHMS = ['sha256', 'sha384', 'sha512'] as const;
export type ChecksumAlgorithm = (typeof CHECKSUM_ALGORITHMS)[number];

export const CHECKSUM_HEX_LENGTH: Record<ChecksumAlgorithm, number> = { sha256: 64, sha384: 96, sha512: 128 };

export interface Checksum {
  algorithm: ChecksumAlgorithm;
  /** Lower-case hex. */
  hex: string;
}

/** A checksum as recorded in box.json and Vmfile.lock: "sha256:HEX" (or sha384, sha512), lower case. */
export const CHECKSUM_PATTERN = /^(sha256:[0-9a-f]{64}|sha384:[0-9a-f]{96}|sha512:[0-9a-f]{128})$/;

/** What a user writes (Vmfile, --checksum): "sha256:HEX", either case. */
export const USER_CHECKSUM_PATTERN = /^sha256:[0-9a-fA-F]{64}$/;

export function parseChecksum(text: string): Checksum | undefined {
  const match = /^(sha256|sha384|sha512):([0-9a-fA-F]+)$/.exec(text.trim());
  const algorithm = match?.[1] as ChecksumAlgorithm | undefined;
  const hex = match?.[2]?.toLowerCase();
  if (algorithm === undefined || hex === undefined || hex.length !== CHECKSUM_HEX_LENGTH[algorithm]) return undefined;
  return { algorithm, hex };
}

export function formatChecksum(checksum: Checksum): string {
  return `${checksum.algorithm}:${checksum.hex}`;
}

/**
 * What a partial download holds, and whether a server's answer may be appended to it.
 *
 * Beside the partial file, before its first byte, is the record of what those bytes are:
 * the validators the server gave (strong ETag, else Last-Modified) and the file's size.
 * Only bytes with both are resumed: the next request asks `Range: bytes=N-` with
 * `If-Range: <validator>`, and a 206 is appended only when it provably continues the same
 * file: its Content-Range runs from N to the end of a file of the recorded size, and it
 * carries the recorded validator, unchanged. A server or cache that ignores If-Range
 * would otherwise splice two versions together; anything short of proof starts the
 * download again from zero.
 */
import type { IncomingMessage } from 'node:http';
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { header } from './http.js';

const recordSchema = z.object({
  /** The URL as shown (credentials redacted): the file is named by a hash of the whole URL. */
  url: z.string(),
  etag: z.string().optional(),
  lastModified: z.string().optional(),
  size: z.number().int().nonnegative().optional(),
});

export type DownloadRecord = z.infer<typeof recordSchema>;

export async function readRecord(path: string, url: string): Promise<DownloadRecord | undefined> {
  const parsed = recordSchema.safeParse(await readFile(path, 'utf8').then((text) => JSON.parse(text) as unknown, () => undefined));
  return parsed.success && parsed.data.url === url ? parsed.data : undefined;
}

/** The record of a whole-file answer (200), written before its first byte. */
export function recordOf(response: IncomingMessage, url: string, size: number | undefined): DownloadRecord {
  const etag = strongEtag(header(response, 'etag'));
  const lastModified = header(response, 'last-modified');
  return { url, ...(etag === undefined ? {} : { etag }), ...(lastModified === undefined ? {} : { lastModified }), ...(size === undefined ? {} : { size }) };
}

/** Bytes that may be resumed: a validator to ask with and a size to check the answer against. */
export function isResumable(record: DownloadRecord | undefined): record is DownloadRecord & { size: number } {
  return record !== undefined && validator(record) !== undefined && record.size !== undefined;
}

/** What If-Range carries, preferring the ETag. */
export function validator(record: DownloadRecord): string | undefined {
  return record.etag ?? record.lastModified;
}

/**
 * Why a 206 may not be appended to the `have` bytes that `record` describes, as a phrase
 * after the URL; undefined when it continues exactly the same file.
 */
export function continuationProblem(record: DownloadRecord & { size: number }, have: number, response: IncomingMessage): string | undefined {
  const text = header(response, 'content-range');
  const range = parseContentRange(text);
  if (range === undefined) return `answered 206 with Content-Range ${JSON.stringify(text ?? '')}`;
  if (range.start !== have) return `sent bytes from ${range.start}, not from ${have}`;
  if (range.size !== record.size) return `now has ${range.size ?? 'an unknown number of'} bytes, not ${record.size}`;
  if (range.end !== record.size - 1) return `sent bytes ${range.start}-${range.end} of ${range.size}, not the rest of the file`;
  if (record.etag !== undefined) {
    const etag = strongEtag(header(response, 'etag'));
    if (etag === undefined) return `sent no ETag, so its bytes may not belong to ${record.etag}`;
    return etag === record.etag ? undefined : `changed its ETag from ${record.etag} to ${etag}`;
  }
  const lastModified = header(response, 'last-modified');
  if (lastModified === undefined) return `sent no Last-Modified, so its bytes may not belong to the version of ${record.lastModified ?? '(none)'}`;
  return lastModified === record.lastModified ? undefined : `changed its Last-Modified from ${record.lastModified ?? '(none)'} to ${lastModified}`;
}

/** "bytes 100-199/1000" -> start 100, end 199, size 1000 (size undefined for "/*"). */
export function parseContentRange(value: string | undefined): { start: number; end: number; size?: number } | undefined {
  const match = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(value?.trim() ?? '');
  if (match === null) return undefined;
  const start = Number(match[1]);
  const end = Number(match[2]);
  const size = match[3] === '*' ? undefined : Number(match[3]);
  if (end < start || (size !== undefined && end >= size)) return undefined;
  return { start, end, ...(size === undefined ? {} : { size }) };
}

/** Weak ETags (W/"...") may not be used in If-Range. */
function strongEtag(etag: string | undefined): string | undefined {
  return etag === undefined || etag.startsWith('W/') ? undefined : etag;
}

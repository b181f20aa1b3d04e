/**
 * HTTP(S) with Node's own http and https, for box downloads and catalogs: GET and HEAD
 * with bounded redirects (never https to http), an idle timeout, and errors that name
 * what was being fetched (`options.what`) and the URL, its credentials (if any) redacted. The resumable file download on
 * top of it is download.ts.
 */
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { UserError } from '../errors.js';
import { checkHttpUrl, redactUrl } from '../vmfile/box-source.js';
import { formatSize } from '../vmfile/size.js';
export interface HttpOptions {
  /** Opens every message: 'box org/name'. */
  what: string;
  /** Milliseconds without a byte (connecting, waiting for headers, or mid-body) before giving up. Default 60 s. */
  idleTimeoutMs?: number;
  /** Default 10. */
  maxRedirects?: number;
}

/**
 * Asked for with a catalog, and when telling a catalog from a box file: as Vagrant does,
 * since a catalog server may answer a browser's request for the same URL with a web page
 * (Vagrant Cloud serves https://vagrantcloud.com/org/name both ways). A box file is
 * served as it is whatever this says.
 */
const PREFER_JSON = { accept: 'application/json, */*;q=0.5' };

/**
 * A small document (a catalog) read whole into memory; refused unread beyond `maxBytes`.
 * The caller names what it is in `options.what`.
 */
export async function downloadText(url: string, maxBytes: number, options: HttpOptions): Promise<{ body: string; contentType?: string }> {
  const response = await request(url, 'GET', PREFER_JSON, options);
  const length = header(response, 'content-length');
  const tooLarge = (): UserError => new UserError(`${options.what}: ${redactUrl(url)} is larger than ${formatSize(maxBytes)}, too large for a box catalog`, { hint: 'check the URL' });
  if (length !== undefined && Number(length) > maxBytes) {
    response.destroy();
    throw tooLarge();
  }
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of response) {
      size += (chunk as Buffer).length;
      if (size > maxBytes) {
        response.destroy();
        throw tooLarge();
      }
      chunks.push(chunk as Buffer);
    }
  } catch (error) {
    if (error instanceof UserError) throw error;
    throw new UserError(`${options.what}: reading ${redactUrl(url)} failed: ${describeNetworkError(error)}`, { hint: 'try again' });
  }
  const contentType = header(response, 'content-type');
  return { body: Buffer.concat(chunks).toString('utf8'), ...(contentType === undefined ? {} : { contentType }) };
}

/** The Content-Type a HEAD request answers with (following redirects), or undefined when the server does not answer HEAD. */
export async function contentTypeOf(url: string, options: HttpOptions): Promise<string | undefined> {
  try {
    const response = await request(url, 'HEAD', PREFER_JSON, options);
    response.resume();
    return header(response, 'content-type');
  } catch (error) {
    // Some servers (and signed storage URLs) refuse HEAD while GET works: decided by GET then.
    if (error instanceof HttpStatusError && [403, 405, 501].includes(error.status)) return undefined;
    throw error;
  }
}

/** A non-2xx answer. */
export class HttpStatusError extends UserError {
  constructor(
    message: string,
    readonly status: number,
    options: { hint?: string },
  ) {
    super(message, options);
  }
}

/**
 * A request that follows redirects (at most maxRedirects, never from https to http) and
 * resolves with a 2xx response; anything else is a UserError naming the URL.
 */
export async function request(url: string, method: 'GET' | 'HEAD', headers: Record<string, string>, options: HttpOptions): Promise<IncomingMessage> {
  const maxRedirects = options.maxRedirects ?? 10;
  let current = url;
  for (let redirects = 0; ; redirects++) {
    const response = await send(current, method, headers, options);
    const status = response.statusCode ?? 0;
    const shown = redactUrl(current);
    const via = current === url ? '' : ` (redirected from ${redactUrl(url)})`;
    if ([301, 302, 303, 307, 308].includes(status)) {
      response.resume();
      const location = header(response, 'location');
      if (location === undefined) throw new UserError(`${options.what}: ${shown} answered ${status} without a Location${via}`);
      const next = resolveLocation(location, current);
      const problem = next === undefined ? 'an absolute http:// or https:// URL' : checkHttpUrl(next);
      if (next === undefined || problem !== undefined) throw new UserError(`${options.what}: ${shown} redirects to ${JSON.stringify(redactUrl(location).slice(0, 200))}, which is not ${problem ?? 'a URL'}${via}`);
      if (isHttps(current) && !isHttps(next)) {
        throw new UserError(`${options.what}: ${shown} redirects to ${redactUrl(next)}, from https to plain http${via}`, { hint: 'vmfile does not follow a redirect that drops TLS; use an http:// URL if that is what you mean' });
      }
      if (redirects >= maxRedirects) throw new UserError(`${options.what}: ${redactUrl(url)} redirects more than ${maxRedirects} times`, { hint: 'the server is misconfigured (a redirect loop?)' });
      current = next;
      continue;
    }
    if (status >= 200 && status < 300) return response;
    response.resume();
    throw new HttpStatusError(`${options.what}: ${method} ${shown} answered ${status} ${response.statusMessage ?? ''}`.trimEnd() + via, status, { hint: statusHint(status) });
  }
}

function statusHint(status: number): string {
  if (status === 404 || status === 410) return 'check the URL';
  if (status === 401 || status === 403) return 'the server refuses access; check the URL (and any token it needs)';
  if (status === 416) return 'the server refuses the range asked for; run the command again';
  if (status >= 500) return 'the server failed; try again later';
  return 'check the URL';
}

/** No HTTP answer at all: refused, reset, timed out. */
export class NetworkError extends UserError {
  constructor(
    message: string,
    readonly reason: string,
  ) {
    super(message, { hint: 'check the URL and the network' });
  }
}

/** Why a response's body was ended by vmfile (the socket went quiet), for the message. */
const stalled = new WeakMap<IncomingMessage, string>();

/** Why vmfile ended this response's body (its socket went quiet), when it did. */
export function stalledReason(response: IncomingMessage): string | undefined {
  return stalled.get(response);
}

function send(url: string, method: 'GET' | 'HEAD', headers: Record<string, string>, options: HttpOptions): Promise<IncomingMessage> {
  const idle = options.idleTimeoutMs ?? 60_000;
  const module = isHttps(url) ? https : http;
  return new Promise((resolve, reject) => {
    let answered: IncomingMessage | undefined;
    const req = module.request(url, { method, headers: { 'user-agent': 'vmfile', 'accept-encoding': 'identity', ...headers } }, (response) => {
      // From here the socket timeout ends the body: the pipeline sees an error and the download is cut short.
      answered = response;
      resolve(response);
    });
    req.setTimeout(idle, () => {
      const reason = `no data for ${Math.round(idle / 1000)} s`;
      if (answered !== undefined) stalled.set(answered, reason);
      req.destroy(new Error(reason));
    });
    req.on('error', (error) => {
      const reason = describeNetworkError(error);
      reject(new NetworkError(`${options.what}: ${method} ${redactUrl(url)} failed: ${reason}`, reason));
    });
    req.end();
  });
}

/** By the parsed scheme: "HTTPS://" is https too (schemes are case-insensitive, and vmfile validate accepts it). */
function isHttps(url: string): boolean {
  return new URL(url).protocol === 'https:';
}

export function describeNetworkError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'host not found';
  if (code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE') return 'connection reset';
  if (error instanceof Error && error.message === 'socket hang up') return 'connection closed before an answer';
  return error instanceof Error ? error.message : String(error);
}

function resolveLocation(location: string, base: string): string | undefined {
  try {
    return new URL(location, base).toString();
  } catch {
    return undefined;
  }
}

export function header(response: IncomingMessage, name: string): string | undefined {
  const value = response.headers[name];
  return Array.isArray(value) ? value[0] : value;
}


/**
 * Box files over HTTP(S) (http.ts): a download that is cut off
 * resumes where it stopped, in this run or the next, and never splices two versions of
 * a file together.
 *
 * The bytes go to a partial file under ~/.vmfile/downloads/ (store/layout.ts), named by
 * the URL; beside it, written before the first byte, the validators the server gave for
 * them (strong ETag, else Last-Modified) and the size. A later request for the rest asks
 * `Range: bytes=N-` with `If-Range: <validator>`, and the answer is used only when it is
 * a 206 whose Content-Range starts at N and has the same total size (and ETag, when the
 * server sends one); a 200 means the server ignored the range or the file changed, and
 * the download starts again from zero with that answer. Without a validator nothing is
 * resumed. A connection that breaks after the transfer began is retried (resuming) a few
 * times in this run; Ctrl-C or a kill leaves the partial file for the next run. The
 * checksum is verified over the whole file before the caller installs anything, and a
 * mismatch deletes the file.
 *
 * Partial downloads are not staging: the staging sweep (store.ts) never touches them.
 * They go when the download finishes, when the checksum fails, or with `box prune`.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, rm, stat, truncate } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { IncomingMessage } from 'node:http';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { BusyError, UserError } from '../errors.js';
import { writeJsonAtomic } from '../store/json.js';
import { downloadPathsOf, downloadsDir, PARTIAL_SUFFIX, type DownloadPaths } from '../store/layout.js';
import { withLock } from '../store/lock.js';
import { checkHttpUrl, formatChecksum, redactUrl, type Checksum } from '../vmfile/box-source.js';
import { formatSize } from '../vmfile/size.js';
import { describeNetworkError, header, HttpStatusError, NetworkError, request, stalledReason, type HttpOptions } from './http.js';
import { MAX_BOX_BYTES } from './untrusted-archive.js';

export interface DownloadOptions extends HttpOptions {
  url: string;
  paths: DownloadPaths;
  /** Verified over the whole file before download() returns; a mismatch deletes the file. */
  checksum?: Checksum;
  /** Default MAX_BOX_BYTES. */
  maxBytes?: number;
  /** Attempts in a row that may end without a new byte before the download fails. Default 3. */
  retries?: number;
  /** Pause before retrying. Default 1 s. */
  retryDelayMs?: number;
  /** Bytes in the partial file now, the total when known, and how many of them were there before this run (resumed). */
  onProgress?: (received: number, total: number | undefined, resumedFrom: number) => void;
  /** Resuming, starting again, retrying: said once each time. */
  onNotice?: (text: string) => void;
}

export interface Downloaded {
  /** The complete file (the partial file, until the caller is done with it: see discard). */
  path: string;
  bytes: number;
  /** The checksum the file was verified with. */
  checksum?: string;
}

const metaSchema = z.object({
  url: z.string(),
  etag: z.string().optional(),
  lastModified: z.string().optional(),
  size: z.number().int().nonnegative().optional(),
});

type Meta = z.infer<typeof metaSchema>;

/** A transfer that began and broke off: retried from where it stopped. `gained`: bytes stored before it broke. */
class CutShort extends Error {
  constructor(
    message: string,
    readonly gained: number,
  ) {
    super(message);
  }
}

/** The server's answer cannot be appended to what is there: start from zero. */
class StartAgain extends Error {}

/**
 * Downloads `url` into its partial file (resuming one left by an earlier attempt) and
 * verifies the checksum. One download per URL at a time: a second vmfile process asking
 * for the same URL gets a BusyError instead of appending to the same file.
 */
export async function download(options: DownloadOptions): Promise<Downloaded> {
  const { paths } = options;
  await mkdir(dirname(paths.partial), { recursive: true, mode: 0o700 });
  return withLock(paths.lock, `${options.what}: the download of ${redactUrl(options.url)}`, 'download', async () => {
    await fetchInto(options);
    const bytes = (await stat(paths.partial)).size;
    if (options.checksum !== undefined) {
      const actual = await hashFile(paths.partial, options.checksum.algorithm);
      if (actual !== options.checksum.hex) {
        await discardDownload(paths);
        throw new UserError(
          `${options.what}: checksum mismatch for ${redactUrl(options.url)}: expected ${formatChecksum(options.checksum)}, got ${options.checksum.algorithm}:${actual}`,
          { hint: 'the download was deleted and nothing was installed; if the file was replaced on purpose, update the checksum' },
        );
      }
    }
    return { path: paths.partial, bytes, ...(options.checksum === undefined ? {} : { checksum: formatChecksum(options.checksum) }) };
  });
}

/** Removes a partial or finished download and what it recorded. */
export async function discardDownload(paths: DownloadPaths): Promise<void> {
  await rm(paths.partial, { force: true });
  await rm(paths.meta, { force: true });
}

/**
 * Partial downloads that no vmfile process is working on (`box prune`): how many and how
 * large, removed unless `dryRun`. One in progress holds its lock and is left alone.
 */
export async function idleDownloads(home: string, options: { dryRun: boolean }): Promise<{ files: number; bytes: number }> {
  const names = await readdir(downloadsDir(home)).catch(() => [] as string[]);
  let files = 0;
  let bytes = 0;
  for (const name of names.filter((file) => file.endsWith(PARTIAL_SUFFIX))) {
    const paths = downloadPathsOf(home, name.slice(0, -PARTIAL_SUFFIX.length));
    const size = await sizeOf(paths.partial);
    try {
      await withLock(paths.lock, `the partial download ${paths.partial}`, 'box prune', async () => {
        if (!options.dryRun) await discardDownload(paths);
      });
    } catch (error) {
      if (error instanceof BusyError) continue;
      throw error;
    }
    files++;
    bytes += size;
  }
  return { files, bytes };
}

/** Where the partial file stands: the record its bytes belong to (none: start from zero) and how many there are. */
async function resumePoint(options: DownloadOptions): Promise<{ meta?: Meta; have: number }> {
  const meta = await readMeta(options.paths.meta, redactUrl(options.url));
  const have = meta === undefined ? 0 : await sizeOf(options.paths.partial);
  if (meta === undefined || validator(meta) === undefined) return { have: 0 };
  return { meta, have };
}

async function fetchInto(options: DownloadOptions): Promise<void> {
  const { paths } = options;
  const retries = options.retries ?? 3;
  let { meta, have } = await resumePoint(options);
  // Finished by an earlier run that stopped before the checksum was checked.
  if (meta?.size !== undefined && have === meta.size && have > 0) return;
  if (have > 0) options.onNotice?.(`resuming the download from ${formatSize(have)}${meta?.size === undefined ? '' : ` of ${formatSize(meta.size)}`}`);
  const resumedFrom = have;
  let fruitless = 0;
  let gainedThisRun = false;
  for (let attempt = 1; ; attempt++) {
    if (have === 0) {
      // Nothing here can be resumed: whatever the files hold goes.
      await discardDownload(paths);
      meta = undefined;
    }
    try {
      await transfer(options, meta, have, resumedFrom);
      return;
    } catch (error) {
      if (attempt >= 20) throw new UserError(`${options.what}: the download of ${redactUrl(options.url)} did not finish after ${attempt} attempts (${(error as Error).message})`, { hint: 'try again later' });
      if (error instanceof StartAgain) {
        options.onNotice?.(error.message);
        have = 0;
        continue;
      }
      // A network that fails once bytes have come is flaky, not wrong: retried like a cut transfer.
      const cut: CutShort | undefined = error instanceof CutShort ? error : error instanceof NetworkError && gainedThisRun ? new CutShort(error.reason, 0) : undefined;
      if (cut === undefined) throw error;
      ({ meta, have } = await resumePoint(options));
      gainedThisRun ||= cut.gained > 0;
      fruitless = cut.gained > 0 ? 0 : fruitless + 1;
      if (fruitless > retries) {
        throw new UserError(`${options.what}: the download of ${redactUrl(options.url)} broke off (${cut.message}) and got no further after ${retries} retries`, {
          hint: have > 0 ? `run the command again to resume from ${formatSize(have)}` : 'check the network, then run the command again',
        });
      }
      options.onNotice?.(`the download broke off (${cut.message}); ${have > 0 ? `resuming from ${formatSize(have)}` : 'starting again (the server gave nothing to resume by)'}`);
      await sleep(options.retryDelayMs ?? 1000);
    }
  }
}

/** One request: appends the answer to the partial file, or starts it again with a whole file. */
async function transfer(options: DownloadOptions, meta: Meta | undefined, have: number, resumedFrom: number): Promise<void> {
  const { paths } = options;
  const ifRange = meta === undefined ? undefined : validator(meta);
  const headers: Record<string, string> = have > 0 && ifRange !== undefined ? { range: `bytes=${have}-`, 'if-range': ifRange } : {};
  let response: IncomingMessage;
  try {
    response = await request(options.url, 'GET', headers, options);
  } catch (error) {
    // The partial file is as long as the file or longer: it is not a prefix of it.
    if (error instanceof HttpStatusError && error.status === 416 && have > 0) throw new StartAgain(`${redactUrl(options.url)} cannot send bytes from ${have} on; starting the download again from zero`);
    throw error;
  }
  const maxBytes = options.maxBytes ?? MAX_BOX_BYTES;
  let record: Meta;
  let total: number | undefined;
  // Bytes that were there before this run (for the rate): none once the file starts again.
  let baseline = 0;
  if (response.statusCode === 206) {
    const range = parseContentRange(header(response, 'content-range'));
    const etag = strongEtag(header(response, 'etag'));
    const problem =
      have === 0 || meta === undefined
        ? 'answered 206 to a request without Range'
        : range === undefined
          ? `answered 206 with Content-Range ${JSON.stringify(header(response, 'content-range') ?? '')}`
          : range.start !== have
            ? `sent bytes from ${range.start}, not from ${have}`
            : meta.size !== undefined && range.size !== meta.size
              ? `now has ${range.size ?? 'an unknown number of'} bytes, not ${meta.size}`
              : meta.etag !== undefined && etag !== undefined && etag !== meta.etag
                ? `changed its ETag from ${meta.etag} to ${etag}`
                : undefined;
    if (problem !== undefined) {
      response.destroy();
      throw new StartAgain(`${redactUrl(options.url)} ${problem}; starting the download again from zero`);
    }
    record = meta as Meta;
    total = range?.size;
    baseline = resumedFrom;
  } else {
    // 200: the whole file. The server ignored the range, or the file changed (If-Range).
    if (have > 0) options.onNotice?.(`${redactUrl(options.url)} sent the whole file instead of the rest (it changed, or the server does not resume); starting again from zero`);
    await truncate(paths.partial, 0).catch(() => undefined);
    const length = header(response, 'content-length');
    total = length !== undefined && /^\d+$/.test(length) ? Number(length) : undefined;
    record = {
      url: redactUrl(options.url),
      ...(strongEtag(header(response, 'etag')) === undefined ? {} : { etag: strongEtag(header(response, 'etag')) }),
      ...(header(response, 'last-modified') === undefined ? {} : { lastModified: header(response, 'last-modified') }),
      ...(total === undefined ? {} : { size: total }),
    };
    // Before the first byte: whatever lands in the file belongs to these validators.
    await writeJsonAtomic(paths.meta, record, { mode: 0o600 });
    have = 0;
  }
  if (total !== undefined && total > maxBytes) {
    response.destroy();
    throw new UserError(`${options.what}: ${redactUrl(options.url)} is ${formatSize(total)}, more than the ${formatSize(maxBytes)} a box may be`, { hint: 'check the URL' });
  }
  const from = have;
  let received = have;
  options.onProgress?.(received, total, baseline);
  // Written chunk by chunk and ended (not destroyed) when the connection breaks, so every
  // byte that arrived is in the file for the next attempt.
  const out = createWriteStream(paths.partial, { flags: 'a', mode: 0o600 });
  const finished = once(out, 'finish');
  let broken: unknown;
  try {
    for await (const chunk of response as AsyncIterable<Buffer>) {
      received += chunk.length;
      if (received > (total ?? maxBytes)) {
        response.destroy();
        out.destroy();
        await discardDownload(paths);
        throw new UserError(`${options.what}: ${redactUrl(options.url)} sent more than ${total === undefined ? `the ${formatSize(maxBytes)} a box may be` : `the ${total} bytes it announced`}`, { hint: 'check the URL' });
      }
      if (!out.write(chunk)) await once(out, 'drain');
      options.onProgress?.(received, total, baseline);
    }
  } catch (error) {
    if (error instanceof UserError) throw error;
    broken = error;
  }
  out.end();
  await finished.catch((error: unknown) => {
    throw new UserError(`${options.what}: cannot write ${paths.partial}: ${error instanceof Error ? error.message : String(error)}`, { hint: 'check the free space where VMFILE_HOME is' });
  });
  if (broken !== undefined) throw new CutShort(stalledReason(response) ?? describeNetworkError(broken), received - from);
  if (total !== undefined && received < total) throw new CutShort(`the server closed the connection after ${formatSize(received)} of ${formatSize(total)}`, received - from);
  if (record.size === undefined) await writeJsonAtomic(paths.meta, { ...record, size: received }, { mode: 0o600 });
}

/** "bytes 100-199/1000" -> start 100, size 1000 (size undefined for "/*"). */
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

/** What If-Range may carry, preferring the ETag. */
function validator(meta: Meta): string | undefined {
  return meta.etag ?? meta.lastModified;
}

async function readMeta(path: string, url: string): Promise<Meta | undefined> {
  const parsed = metaSchema.safeParse(await readFile(path, 'utf8').then((text) => JSON.parse(text) as unknown, () => undefined));
  return parsed.success && parsed.data.url === url ? parsed.data : undefined;
}

async function sizeOf(path: string): Promise<number> {
  return (await stat(path).catch(() => undefined))?.size ?? 0;
}

async function hashFile(path: string, algorithm: string): Promise<string> {
  const hash = createHash(algorithm);
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * 1024 * 1024 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Box files over HTTP(S) (http.ts): a download that is cut off resumes where it stopped,
 * in this run or the next; it never splices two versions of a file together (resume.ts
 * says when an answer may be appended) and never takes more of the disk than space.ts
 * allows, checked before the first byte and while the bytes come.
 *
 * The bytes go to a partial file under ~/.vmfile/downloads/ (store/layout.ts), named by
 * the URL, with the record of what they are beside it. A 200 means the server ignored the
 * range or the file changed, and the download starts again from zero with that answer. A
 * connection that breaks after the transfer began is retried (resuming) a few times in
 * this run; Ctrl-C or a kill leaves the partial file for the next run. A download that
 * fails leaves its partial file only when it can be resumed: bytes without a validator
 * and a size, or of a file larger than it said, only take space. The checksum is
 * verified over the whole file before the caller installs anything, and a mismatch
 * deletes the file.
 *
 * Partial downloads are not staging: the staging sweep (store.ts) never touches them.
 * They go when the download finishes, when it fails as above, or with `box prune`
 * (prune.ts).
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rm, stat, truncate } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { IncomingMessage } from 'node:http';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { UserError } from '../errors.js';
import { writeJsonAtomic } from '../store/json.js';
import type { DownloadPaths } from '../store/layout.js';
import { withLock } from '../store/lock.js';
import { formatChecksum, redactUrl, type Checksum } from '../vmfile/box-source.js';
import { formatSize } from '../vmfile/size.js';
import { describeNetworkError, header, HttpStatusError, NetworkError, request, stalledReason, type HttpOptions } from './http.js';
import { continuationProblem, isResumable, readRecord, recordOf, validator, type DownloadRecord } from './resume.js';
import { describeSpace, MAX_BOX_BYTES, SPACE_CHECK_BYTES, SPACE_HINT, spaceBudget, spaceRunningOut, type SpaceBudget, type SpaceProbe } from './space.js';

export interface DownloadOptions extends HttpOptions {
  url: string;
  paths: DownloadPaths;
  /** Verified over the whole file before download() returns; a mismatch deletes the file. */
  checksum?: Checksum;
  /** Default MAX_BOX_BYTES. */
  maxBytes?: number;
  /** Reads the free space (space.ts); tests stand in a small or filling disk. */
  freeSpace?: SpaceProbe;
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

/** The bytes are not the file asked for (more than it announced, or than a box may be): never kept. */
class WrongFile extends UserError {}

/**
 * Downloads `url` into its partial file (resuming one left by an earlier attempt) and
 * verifies the checksum. One download per URL at a time: a second vmfile process asking
 * for the same URL gets a BusyError instead of appending to the same file.
 */
export async function download(options: DownloadOptions): Promise<Downloaded> {
  const { paths } = options;
  await mkdir(dirname(paths.partial), { recursive: true, mode: 0o700 });
  return withLock(paths.lock, `${options.what}: the download of ${redactUrl(options.url)}`, 'download', async () => {
    try {
      await fetchInto(options);
    } catch (error) {
      if (error instanceof WrongFile || !isResumable(await readRecord(paths.meta, redactUrl(options.url)))) await discardDownload(paths);
      throw error;
    }
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

/** Where the partial file stands: the record its bytes belong to (none: start from zero) and how many there are. */
async function resumePoint(options: DownloadOptions): Promise<{ record?: DownloadRecord & { size: number }; have: number }> {
  const record = await readRecord(options.paths.meta, redactUrl(options.url));
  if (!isResumable(record)) return { have: 0 };
  return { record, have: await sizeOf(options.paths.partial) };
}

async function fetchInto(options: DownloadOptions): Promise<void> {
  const { paths } = options;
  const retries = options.retries ?? 3;
  let { record, have } = await resumePoint(options);
  // Finished by an earlier run that stopped before the checksum was checked.
  if (record !== undefined && have === record.size && have > 0) return;
  if (have > 0) options.onNotice?.(`resuming the download from ${formatSize(have)}${record === undefined ? '' : ` of ${formatSize(record.size)}`}`);
  const resumedFrom = have;
  let fruitless = 0;
  let gainedThisRun = false;
  for (let attempt = 1; ; attempt++) {
    if (have === 0) {
      // Nothing here can be resumed: whatever the files hold goes.
      await discardDownload(paths);
      record = undefined;
    }
    try {
      await transfer(options, record, have, resumedFrom);
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
      ({ record, have } = await resumePoint(options));
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
async function transfer(options: DownloadOptions, resumable: (DownloadRecord & { size: number }) | undefined, have: number, resumedFrom: number): Promise<void> {
  const { paths } = options;
  const shown = redactUrl(options.url);
  const cap = options.maxBytes ?? MAX_BOX_BYTES;
  const budget = await spaceBudget(dirname(paths.partial), cap, options.freeSpace);
  if (budget.bytes === 0) throw new UserError(`${options.what}: no room to download ${shown}: ${describeSpace(budget)}`, { hint: SPACE_HINT });
  const ifRange = resumable === undefined ? undefined : validator(resumable);
  const headers: Record<string, string> = have > 0 && ifRange !== undefined ? { range: `bytes=${have}-`, 'if-range': ifRange } : {};
  let response: IncomingMessage;
  try {
    response = await request(options.url, 'GET', headers, options);
  } catch (error) {
    // The partial file is as long as the file or longer: it is not a prefix of it.
    if (error instanceof HttpStatusError && error.status === 416 && have > 0) throw new StartAgain(`${shown} cannot send bytes from ${have} on; starting the download again from zero`);
    throw error;
  }
  let record: DownloadRecord;
  let total: number | undefined;
  // Bytes that were there before this run (for the rate): none once the file starts again.
  let baseline = 0;
  if (response.statusCode === 206) {
    const asked = have > 0 ? resumable : undefined;
    const problem = asked === undefined ? 'answered 206 to a request without Range' : continuationProblem(asked, have, response);
    if (asked === undefined || problem !== undefined) {
      response.destroy();
      throw new StartAgain(`${shown} ${problem}; starting the download again from zero`);
    }
    record = asked;
    total = asked.size;
    baseline = resumedFrom;
  } else {
    // 200: the whole file. The server ignored the range, or the file changed (If-Range).
    if (have > 0) options.onNotice?.(`${shown} sent the whole file instead of the rest (it changed, or the server does not resume); starting again from zero`);
    const length = header(response, 'content-length');
    total = length !== undefined && /^\d+$/.test(length) ? Number(length) : undefined;
    record = recordOf(response, shown, total);
    have = 0;
  }
  // Before a byte is written: a file too large for a box, or for the room there is.
  if (total !== undefined && total > cap) {
    response.destroy();
    throw new WrongFile(`${options.what}: ${shown} is ${formatSize(total)}, more than the ${formatSize(cap)} a box may be`, { hint: 'check the URL' });
  }
  if (total !== undefined && total - have > budget.bytes) {
    response.destroy();
    const rest = have > 0 ? ` (${formatSize(total - have)} of it still to come)` : '';
    throw new UserError(`${options.what}: ${shown} is ${formatSize(total)}${rest}, but ${describeSpace(budget)}`, { hint: SPACE_HINT });
  }
  if (response.statusCode !== 206) {
    await truncate(paths.partial, 0).catch(() => undefined);
    // Before the first byte: whatever lands in the file belongs to these validators.
    await writeJsonAtomic(paths.meta, record, { mode: 0o600 });
  }
  const received = await receive(options, response, { from: have, total, baseline, budget });
  if (total !== undefined && received < total) throw new CutShort(`the server closed the connection after ${formatSize(received)} of ${formatSize(total)}`, received - have);
  if (record.size === undefined) await writeJsonAtomic(paths.meta, { ...record, size: received }, { mode: 0o600 });
}

/**
 * Appends the body to the partial file, chunk by chunk, and resolves with the file's
 * size. Ended (not destroyed) when the connection breaks, so every byte that arrived is
 * in the file for the next attempt; stopped at the first byte over the size announced,
 * the size cap, or the room there is, and whenever the file system reaches its reserve.
 */
async function receive(options: DownloadOptions, response: IncomingMessage, at: { from: number; total: number | undefined; baseline: number; budget: SpaceBudget }): Promise<number> {
  const { paths } = options;
  const shown = redactUrl(options.url);
  const cap = options.maxBytes ?? MAX_BOX_BYTES;
  const room = at.from + at.budget.bytes;
  let received = at.from;
  let nextCheck = at.from + SPACE_CHECK_BYTES;
  options.onProgress?.(received, at.total, at.baseline);
  const out = createWriteStream(paths.partial, { flags: 'a', mode: 0o600 });
  const finished = once(out, 'finish');
  let broken: unknown;
  let refused: UserError | undefined;
  try {
    for await (const chunk of response as AsyncIterable<Buffer>) {
      received += chunk.length;
      if (at.total !== undefined && received > at.total) refused = new WrongFile(`${options.what}: ${shown} sent more than the ${at.total} bytes it announced`, { hint: 'check the URL' });
      else if (received > cap) refused = new WrongFile(`${options.what}: ${shown} sent more than the ${formatSize(cap)} a box may be`, { hint: 'check the URL' });
      else if (received > room) refused = new UserError(`${options.what}: ${shown} sent more than the ${formatSize(at.budget.bytes)} there is room for: ${describeSpace(at.budget)}`, { hint: SPACE_HINT });
      else if (received >= nextCheck) {
        nextCheck += SPACE_CHECK_BYTES;
        const low = await spaceRunningOut(at.budget, options.freeSpace);
        if (low !== undefined) refused = new UserError(`${options.what}: downloading ${shown} stopped: ${low}`, { hint: SPACE_HINT });
      }
      if (refused !== undefined) break;
      if (!out.write(chunk)) await once(out, 'drain');
      options.onProgress?.(received, at.total, at.baseline);
    }
  } catch (error) {
    broken = error;
  }
  if (refused !== undefined) response.destroy();
  out.end();
  await finished.catch(async (error: unknown) => {
    const space = await spaceBudget(at.budget.dir, cap, options.freeSpace).catch(() => undefined);
    throw new UserError(`${options.what}: downloading ${shown}: cannot write ${paths.partial}: ${error instanceof Error ? error.message : String(error)}`, {
      hint: space === undefined ? SPACE_HINT : `${describeSpace(space)}; ${SPACE_HINT}`,
    });
  });
  if (refused !== undefined) throw refused;
  if (broken !== undefined) throw new CutShort(stalledReason(response) ?? describeNetworkError(broken), received - at.from);
  return received;
}

async function sizeOf(path: string): Promise<number> {
  return (await stat(path).catch(() => undefined))?.size ?? 0;
}

async function hashFile(path: string, algorithm: string): Promise<string> {
  const hash = createHash(algorithm);
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * 1024 * 1024 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

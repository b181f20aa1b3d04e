import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { download, type DownloadOptions } from '../../../src/box/download.js';
import { idleDownloads } from '../../../src/box/prune.js';
import { downloadText } from '../../../src/box/http.js';
import type { SpaceProbe } from '../../../src/box/space.js';
import { BusyError, UserError } from '../../../src/errors.js';
import { downloadPaths, downloadsDir } from '../../../src/store/layout.js';
import { withLock } from '../../../src/store/lock.js';
import { formatSize } from '../../../src/vmfile/size.js';
import { tempDir } from '../temp-dir.js';
import { startFakeHttpServer, type FakeHttpServer } from './fake-http-server.js';

const SIZE = 256 * 1024;

let server: FakeHttpServer;
let home: string;
let body: Buffer;

beforeEach(async () => {
  server = await startFakeHttpServer();
  home = await tempDir();
  body = randomBytes(SIZE);
});

afterEach(async () => server.close());

function sha256(data: Buffer): { algorithm: 'sha256'; hex: string } {
  return { algorithm: 'sha256', hex: createHash('sha256').update(data).digest('hex') };
}

/** A download of /box.qcow2 with quick retries; `extra` overrides. */
function options(extra: Partial<DownloadOptions> = {}): DownloadOptions & { notices: string[]; progress: [number, number | undefined, number][] } {
  const notices: string[] = [];
  const progress: [number, number | undefined, number][] = [];
  const url = server.url('/box.qcow2');
  return {
    url,
    paths: downloadPaths(home, url),
    what: 'box test',
    checksum: sha256(body),
    retryDelayMs: 0,
    onNotice: (text) => notices.push(text),
    onProgress: (received, total, resumedFrom) => progress.push([received, total, resumedFrom]),
    notices,
    progress,
    ...extra,
  };
}

async function failure(promise: Promise<unknown>): Promise<UserError> {
  const error: unknown = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  if (!(error instanceof UserError)) throw new Error(`expected a UserError, got ${String(error)}`);
  return error;
}

/**
 * Where a request asked to resume, checked to be within the first `cut` bytes (the bytes
 * a cut connection delivered last may be lost with its socket: the file's size is what counts).
 */
function resumedAt(range: string | undefined, cut: number): number {
  const from = Number(/^bytes=(\d+)-$/.exec(range ?? '')?.[1]);
  expect(from).toBeGreaterThan(0);
  expect(from).toBeLessThanOrEqual(cut);
  return from;
}

const GETS = (path = '/box.qcow2') => server.requests.filter((request) => request.path === path && request.method === 'GET');

describe('download', () => {
  test('a whole file: verified, private, progress to the end', async () => {
    server.files.set('/box.qcow2', { body, etag: '"v1"' });
    const run = options();

    const result = await download(run);

    expect(result).toEqual({ path: run.paths.partial, bytes: SIZE, checksum: `sha256:${sha256(body).hex}` });
    expect((await readFile(result.path)).equals(body)).toBe(true);
    expect((await stat(result.path)).mode & 0o777).toBe(0o600);
    expect((await stat(downloadsDir(home))).mode & 0o777).toBe(0o700);
    expect(run.progress.at(-1)).toEqual([SIZE, SIZE, 0]);
    expect(run.notices).toEqual([]);
  });

  test('a connection cut halfway resumes with Range and If-Range, fetching the rest only', async () => {
    server.files.set('/box.qcow2', { body, etag: '"v1"', cutAfter: SIZE / 2 });
    const run = options();

    await download(run);

    const [first, second] = GETS();
    expect(first?.range).toBeUndefined();
    const from = resumedAt(second?.range, SIZE / 2);
    expect(second?.ifRange).toBe('"v1"');
    expect(second?.status).toBe(206);
    expect(server.bytesSent('/box.qcow2')).toBe(SIZE / 2 + SIZE - from);
    expect(server.bytesSent('/box.qcow2')).toBeLessThan(2 * SIZE);
    expect((await readFile(run.paths.partial)).equals(body)).toBe(true);
    expect(run.notices.join('\n')).toContain(`resuming from ${formatSize(from)}`);
  });

  test('a run that gives up leaves a partial file that the next run resumes', async () => {
    server.files.set('/box.qcow2', { body, lastModified: 'Wed, 21 Oct 2026 07:28:00 GMT', cutAfter: SIZE / 4, hangUpAfterCuts: true });
    const error = await failure(download(options({ retries: 0 })));
    expect(error.message).toMatch(/broke off \(connection reset\) and got no further after 0 retries$/);
    const file = server.files.get('/box.qcow2');
    if (file !== undefined) file.hangUpAfterCuts = false;
    const have = (await stat(options().paths.partial)).size;
    expect(have).toBeGreaterThan(0);
    expect(error.hint).toBe(`run the command again to resume from ${formatSize(have)}`);

    const next = options();
    await download(next);

    expect(GETS().at(-1)).toMatchObject({ range: `bytes=${have}-`, ifRange: 'Wed, 21 Oct 2026 07:28:00 GMT', status: 206 });
    expect(server.bytesSent('/box.qcow2')).toBe(SIZE / 4 + SIZE - have);
    expect((await readFile(next.paths.partial)).equals(body)).toBe(true);
    // The rate counts only this run's bytes.
    expect(next.progress[0]).toEqual([have, SIZE, have]);
    expect(next.notices[0]).toBe(`resuming the download from ${formatSize(have)} of 256KiB`);
  });

  test('a server that ignores Range (200) is taken from zero, not appended', async () => {
    server.files.set('/box.qcow2', { body, etag: '"v1"', cutAfter: SIZE / 2, ignoreRange: true });
    const run = options();

    await download(run);

    expect(GETS().map((request) => request.status)).toEqual([200, 200]);
    resumedAt(GETS()[1]?.range, SIZE / 2);
    expect((await readFile(run.paths.partial)).equals(body)).toBe(true);
    expect(run.notices.join('\n')).toContain('sent the whole file instead of the rest');
  });

  test('a file that changed between runs (another ETag) is not spliced onto the old bytes', async () => {
    const old = randomBytes(SIZE);
    server.files.set('/box.qcow2', { body: old, etag: '"v1"', cutAfter: SIZE / 2, hangUpAfterCuts: true });
    await failure(download(options({ retries: 0, checksum: sha256(old) })));
    server.files.set('/box.qcow2', { body, etag: '"v2"' });

    const run = options();
    await download(run);

    // If-Range "v1" no longer holds: the server sends the new file whole.
    expect(GETS().at(-1)).toMatchObject({ ifRange: '"v1"', status: 200 });
    resumedAt(GETS().at(-1)?.range, SIZE / 2);
    expect((await readFile(run.paths.partial)).equals(body)).toBe(true);
  });

  test('a 206 of another version (a cache that ignores If-Range) is refused and the file fetched again', async () => {
    const old = randomBytes(SIZE);
    server.files.set('/box.qcow2', { body: old, etag: '"v1"', cutAfter: SIZE / 2, hangUpAfterCuts: true });
    await failure(download(options({ retries: 0, checksum: sha256(old) })));
    server.files.set('/box.qcow2', { body, etag: '"v2"', ignoreIfRange: true });

    const run = options();
    await download(run);

    const [resumed, whole] = GETS().slice(2);
    resumedAt(resumed?.range, SIZE / 2);
    expect([resumed?.status, whole?.range, whole?.status]).toEqual([206, undefined, 200]);
    expect(run.notices.join('\n')).toContain('changed its ETag from "v1" to "v2"; starting the download again from zero');
    expect((await readFile(run.paths.partial)).equals(body)).toBe(true);
  });

  test('a 206 of another version with only Last-Modified (a cache that ignores If-Range) is refused and the file fetched again', async () => {
    const old = randomBytes(SIZE);
    server.files.set('/box.qcow2', { body: old, lastModified: 'Wed, 21 Oct 2026 07:28:00 GMT', cutAfter: SIZE / 2, hangUpAfterCuts: true });
    await failure(download(options({ retries: 0, checksum: sha256(old) })));
    server.files.set('/box.qcow2', { body, lastModified: 'Thu, 22 Oct 2026 09:00:00 GMT', ignoreIfRange: true });

    // No checksum (box add allows that): only the validators stand between the two versions.
    const { checksum: _none, ...unverified } = options();
    await download(unverified);

    expect(GETS().slice(2).map((request) => request.status)).toEqual([206, 200]);
    expect(unverified.notices.join('\n')).toContain('changed its Last-Modified from Wed, 21 Oct 2026 07:28:00 GMT to Thu, 22 Oct 2026 09:00:00 GMT; starting the download again from zero');
    expect((await readFile(unverified.paths.partial)).equals(body)).toBe(true);
  });

  test('a 206 that does not say which version it is (no ETag) is not appended to bytes recorded with one', async () => {
    const old = randomBytes(SIZE);
    server.files.set('/box.qcow2', { body: old, etag: '"v1"', cutAfter: SIZE / 2, hangUpAfterCuts: true });
    await failure(download(options({ retries: 0, checksum: sha256(old) })));
    server.files.set('/box.qcow2', { body, etag: '"v2"' });
    server.routes.push((req, res) => {
      const from = /^bytes=(\d+)-$/.exec(req.headers.range ?? '')?.[1];
      if (from === undefined) return false;
      res.writeHead(206, { 'content-range': `bytes ${from}-${SIZE - 1}/${SIZE}`, 'content-length': String(SIZE - Number(from)) }).end(body.subarray(Number(from)));
      return true;
    });

    const { checksum: _none, ...unverified } = options();
    await download(unverified);

    expect(unverified.notices.join('\n')).toContain('sent no ETag, so its bytes may not belong to "v1"; starting the download again from zero');
    expect((await readFile(unverified.paths.partial)).equals(body)).toBe(true);
  });

  test('a 206 that does not run to the end of the file is not appended', async () => {
    server.files.set('/box.qcow2', { body, etag: '"v1"', cutAfter: SIZE / 2 });
    server.routes.push((req, res) => {
      const from = /^bytes=(\d+)-$/.exec(req.headers.range ?? '')?.[1];
      if (from === undefined) return false;
      res.writeHead(206, { etag: '"v1"', 'content-range': `bytes ${from}-${Number(from) + 9}/${SIZE}`, 'content-length': '10' }).end(body.subarray(Number(from), Number(from) + 10));
      return true;
    });
    const run = options();

    await download(run);

    expect(run.notices.join('\n')).toMatch(/sent bytes \d+-\d+ of 262144, not the rest of the file; starting the download again from zero/);
    expect((await readFile(run.paths.partial)).equals(body)).toBe(true);
  });

  test('bytes of a file whose size was not announced are not resumed: the total could not be checked', async () => {
    server.files.set('/box.qcow2', { body, etag: '"v1"', chunked: true, cutAfter: SIZE / 2 });
    const run = options();

    await download(run);

    expect(GETS().map((request) => request.range)).toEqual([undefined, undefined]);
    expect((await readFile(run.paths.partial)).equals(body)).toBe(true);
  });

  test('a Content-Range that does not start where the file stops is refused', async () => {
    server.files.set('/box.qcow2', { body, etag: '"v1"', cutAfter: SIZE / 2 });
    server.routes.push((req, res) => {
      if (req.headers.range === undefined) return false;
      res.writeHead(206, { etag: '"v1"', 'content-range': `bytes 0-${SIZE - 1}/${SIZE}`, 'content-length': String(SIZE) }).end(body);
      return true;
    });
    const run = options();

    await download(run);

    expect(run.notices.join('\n')).toMatch(/sent bytes from 0, not from \d+; starting the download again from zero/);
    expect((await readFile(run.paths.partial)).equals(body)).toBe(true);
  });

  test('without ETag or Last-Modified nothing is resumed: the file is fetched again whole', async () => {
    server.files.set('/box.qcow2', { body, cutAfter: SIZE / 2 });
    const run = options();

    await download(run);

    expect(GETS().map((request) => request.range)).toEqual([undefined, undefined]);
    expect((await readFile(run.paths.partial)).equals(body)).toBe(true);
  });

  test('a wrong checksum deletes the download and installs nothing', async () => {
    server.files.set('/box.qcow2', { body, etag: '"v1"' });
    const run = options({ checksum: { algorithm: 'sha256', hex: '0'.repeat(64) } });

    const error = await failure(download(run));

    expect(error.message).toBe(`box test: checksum mismatch for ${run.url}: expected sha256:${'0'.repeat(64)}, got sha256:${sha256(body).hex}`);
    expect(error.hint).toMatch(/^the download was deleted and nothing was installed/);
    expect(await readdir(downloadsDir(home))).toEqual([]);
  });

  test('sha512 checksums are verified too', async () => {
    server.files.set('/box.qcow2', { body, etag: '"v1"' });
    const hex = createHash('sha512').update(body).digest('hex');
    expect((await download(options({ checksum: { algorithm: 'sha512', hex } }))).checksum).toBe(`sha512:${hex}`);
    await expect(download(options({ checksum: { algorithm: 'sha512', hex: hex.replace(/^./, hex.startsWith('0') ? '1' : '0') } }))).rejects.toThrow(/checksum mismatch/);
  });

  test('a partial file as long as the whole file is checked without a request', async () => {
    server.files.set('/box.qcow2', { body, etag: '"v1"' });
    await download(options({ checksum: { algorithm: 'sha256', hex: '0'.repeat(64) } })).catch(() => undefined);
    await download(options());
    const requests = GETS().length;

    await download(options());

    expect(GETS()).toHaveLength(requests);
  });

  test('a 416 (the partial file is not a prefix) starts again from zero', async () => {
    server.files.set('/box.qcow2', { body, etag: '"v1"' });
    const run = options();
    await mkdir(downloadsDir(home), { recursive: true });
    await writeFile(run.paths.partial, Buffer.concat([body, body]));
    // Recorded as a longer file, so the partial looks like a prefix until the server says otherwise.
    await writeFile(run.paths.meta, JSON.stringify({ url: run.url, etag: '"v1"', size: 3 * SIZE }));

    await download(run);

    expect(GETS().map((request) => request.status)).toEqual([416, 200]);
    expect((await readFile(run.paths.partial)).equals(body)).toBe(true);
  });

  test('redirects are followed, and the resumed request is redirected too', async () => {
    server.files.set('/storage/box.qcow2', { body, etag: '"v1"', cutAfter: SIZE / 2 });
    server.routes.push((req, res) => {
      if (!req.url?.startsWith('/box.qcow2')) return false;
      res.writeHead(302, { location: '/storage/box.qcow2' }).end();
      return true;
    });
    const run = options();

    await download(run);

    const [first, second] = GETS('/storage/box.qcow2');
    expect(first?.range).toBeUndefined();
    resumedAt(second?.range, SIZE / 2);
    expect((await readFile(run.paths.partial)).equals(body)).toBe(true);
  });

  test('a redirect loop is bounded and names the URL', async () => {
    server.routes.push((req, res) => {
      res.writeHead(301, { location: req.url ?? '/' }).end();
      return true;
    });
    const run = options({ maxRedirects: 3 });
    const error = await failure(download(run));
    expect(error.message).toBe(`box test: ${run.url} redirects more than 3 times`);
    expect(server.requests).toHaveLength(4);
  });

  test('a redirect to another scheme is refused', async () => {
    server.routes.push((_req, res) => {
      res.writeHead(302, { location: 'file:///etc/passwd' }).end();
      return true;
    });
    const run = options();
    expect((await failure(download(run))).message).toBe(`box test: ${run.url} redirects to "file:///etc/passwd", which is not an http:// or https:// URL, not file:`);
  });

  test.each([
    [404, 'check the URL'],
    [403, 'the server refuses access; check the URL (and any token it needs)'],
    [503, 'the server failed; try again later'],
  ])('HTTP %i is an error naming the box and the URL', async (status, hint) => {
    server.routes.push((_req, res) => {
      res.writeHead(status).end();
      return true;
    });
    const run = options();
    const error = await failure(download(run));
    expect(error.message).toMatch(new RegExp(`^box test: GET ${run.url.replaceAll('.', '\\.')} answered ${status} `));
    expect(error.hint).toBe(hint);
  });

  test('a server that stops sending times out, and the next run resumes', async () => {
    server.files.set('/box.qcow2', { body, etag: '"v1"', stall: true });
    const error = await failure(download(options({ idleTimeoutMs: 200, retries: 0 })));
    expect(error.message).toMatch(/broke off \(no data for 0 s\) and got no further after 0 retries$/);
    server.files.set('/box.qcow2', { body, etag: '"v1"' });
    await download(options());
  });

  test('a server that never answers times out with the URL', async () => {
    server.routes.push(() => true);
    const run = options({ idleTimeoutMs: 200 });
    expect((await failure(download(run))).message).toBe(`box test: GET ${run.url} failed: no data for 0 s`);
  });

  test('nothing listening: connection refused, naming the URL', async () => {
    const url = server.url('/box.qcow2');
    await server.close();
    const error = await failure(download({ ...options(), url }));
    expect(error.message).toBe(`box test: GET ${url} failed: connection refused`);
  });

  test('a file larger than the bound is refused before a byte is stored', async () => {
    server.files.set('/box.qcow2', { body, etag: '"v1"' });
    const run = options({ maxBytes: SIZE / 2 });
    expect((await failure(download(run))).message).toBe(`box test: ${run.url} is 256KiB, more than the 128KiB a box may be`);
    expect((await stat(run.paths.partial).catch(() => undefined))?.size ?? 0).toBe(0);
  });

  test('a body without Content-Length is cut at the bound', async () => {
    server.files.set('/box.qcow2', { body, etag: '"v1"', chunked: true });
    const run = options({ maxBytes: SIZE / 2 });
    expect((await failure(download(run))).message).toBe(`box test: ${run.url} sent more than the 128KiB a box may be`);
  });

  test('two downloads of one URL at once: the second is refused, not appended', async () => {
    server.files.set('/box.qcow2', { body, etag: '"v1"' });
    const run = options();
    await mkdir(downloadsDir(home), { recursive: true });
    await withLock(run.paths.lock, 'test', 'download', async () => {
      await expect(download(options())).rejects.toThrow(BusyError);
    });
    await download(options());
  });
});

describe('free space', () => {
  const GiB = 1024 ** 3;
  /** A file system of 100 GiB, so that vmfile leaves 2 GiB of it free, with `frees` free in turn (the last one from then on). */
  function disk(...frees: number[]): SpaceProbe & { dirs: string[] } {
    const dirs: string[] = [];
    const probe = async (dir: string) => {
      dirs.push(dir);
      return { free: frees[Math.min(dirs.length - 1, frees.length - 1)] ?? 0, size: 100 * GiB };
    };
    return Object.assign(probe, { dirs });
  }
  const left = async (): Promise<string[]> => (await readdir(downloadsDir(home)).catch(() => [])).filter((name) => !name.endsWith('.lock'));

  test('a file larger than the room there is is refused before a byte is stored, naming the URL, what is free and what to do', async () => {
    server.files.set('/box.qcow2', { body, etag: '"v1"' });
    const run = options({ freeSpace: disk(2 * GiB + 100 * 1024) });

    const error = await failure(download(run));

    expect(error.message).toBe(`box test: ${run.url} is 256KiB, but the file system of ${downloadsDir(home)} has 2.0GiB free, and vmfile leaves 2GiB of it free`);
    expect(error.hint).toBe('free some space there (vmfile box prune and vmfile cache prune remove what nothing uses), or point VMFILE_HOME at a larger file system');
    expect(await left()).toEqual([]);
  });

  test('a server that announces no size is stopped at the room there is, and its bytes, which could never resume, are removed', async () => {
    server.files.set('/box.qcow2', { body, etag: '"v1"', chunked: true });
    const run = options({ freeSpace: disk(2 * GiB + 100 * 1024) });

    const error = await failure(download(run));

    expect(error.message).toBe(`box test: ${run.url} sent more than the 100KiB there is room for: the file system of ${downloadsDir(home)} has 2.0GiB free, and vmfile leaves 2GiB of it free`);
    expect(await left()).toEqual([]);
  });

  test('a disk that fills while the bytes come stops the download at the reserve; bytes that can resume are kept for later', async () => {
    const big = randomBytes(20 * 1024 * 1024);
    server.files.set('/box.qcow2', { body: big, etag: '"v1"' });
    const filling = disk(50 * GiB, 1 * GiB);

    const error = await failure(download(options({ checksum: sha256(big), freeSpace: filling })));

    expect(error.message).toBe(`box test: downloading ${server.url('/box.qcow2')} stopped: the file system of ${downloadsDir(home)} has only 1GiB free now, less than the 2GiB vmfile leaves free`);
    const kept = (await stat(options().paths.partial)).size;
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThan(big.length);
    await download(options({ checksum: sha256(big), freeSpace: disk(50 * GiB) }));
    expect(GETS().at(-1)?.range).toBe(`bytes=${kept}-`);
  });

  test('no room at all: nothing is asked', async () => {
    server.files.set('/box.qcow2', { body, etag: '"v1"' });
    const error = await failure(download(options({ freeSpace: disk(GiB) })));
    expect(error.message).toBe(`box test: no room to download ${server.url('/box.qcow2')}: the file system of ${downloadsDir(home)} has 1GiB free, and vmfile leaves 2GiB of it free`);
    expect(GETS()).toEqual([]);
  });

  test('a download that fails and cannot be resumed (no validator) leaves nothing behind', async () => {
    // Every answer breaks off after 1000 bytes: the last attempt's bytes would stay.
    server.routes.push((_req, res) => {
      res.writeHead(200, { 'content-length': String(SIZE) });
      res.write(body.subarray(0, 1000), () => setTimeout(() => res.socket?.destroy(), 20));
      return true;
    });
    const error = await failure(download(options()));
    expect(error.message).toMatch(/did not finish after 20 attempts/);
    expect(await left()).toEqual([]);
  });
});

describe('downloadText', () => {
  test('reads a small document, and refuses a large one by its Content-Length or its bytes', async () => {
    server.files.set('/c.json', { body: Buffer.from('{"a":1}'), contentType: 'application/json' });
    server.files.set('/big.json', { body: Buffer.alloc(2048, 0x20) });
    server.files.set('/big-chunked.json', { body: Buffer.alloc(2048, 0x20), chunked: true });

    expect(await downloadText(server.url('/c.json'), 1024, { what: 'box x' })).toEqual({ body: '{"a":1}', contentType: 'application/json' });
    await expect(downloadText(server.url('/big.json'), 1024, { what: 'box x' })).rejects.toThrow(`box x: ${server.url('/big.json')} is larger than 1KiB, too large for a box catalog`);
    await expect(downloadText(server.url('/big-chunked.json'), 1024, { what: 'box x' })).rejects.toThrow(`box x: ${server.url('/big-chunked.json')} is larger than 1KiB`);
  });
});

describe('idleDownloads', () => {
  test('removes partial downloads nobody works on and leaves one in progress', async () => {
    server.files.set('/a', { body, etag: '"a"', cutAfter: 1000, hangUpAfterCuts: true });
    server.files.set('/b', { body, etag: '"b"', cutAfter: 2000, hangUpAfterCuts: true });
    const a = options({ url: server.url('/a'), paths: downloadPaths(home, server.url('/a')), retries: 0 });
    const b = options({ url: server.url('/b'), paths: downloadPaths(home, server.url('/b')), retries: 0 });
    await failure(download(a));
    await failure(download(b));

    const sizes = [(await stat(a.paths.partial)).size, (await stat(b.paths.partial)).size] as const;
    expect(await idleDownloads(home, { dryRun: true })).toEqual({ files: 2, bytes: sizes[0] + sizes[1] });
    const removed = await withLock(b.paths.lock, 'test', 'download', () => idleDownloads(home, { dryRun: false }));

    expect(removed).toEqual({ files: 1, bytes: sizes[0] });
    expect((await readdir(downloadsDir(home))).sort()).toEqual([b.paths.partial, b.paths.meta].map((path) => path.split('/').at(-1)).sort());
  });
});

/**
 * A small HTTP file server on 127.0.0.1 for download tests: serves files with ETag,
 * Last-Modified, Range and If-Range as a real server does, and can misbehave on
 * request: cut the connection after some bytes, ignore Range, lie in Content-Range,
 * stall. It records every request and counts the body bytes it sent. The e2e download
 * test serves its boxes with it too.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeFile {
  body: Buffer;
  etag?: string;
  lastModified?: string;
  contentType?: string;
  /** Cut the connection after this many body bytes, for the next `cuts` responses (default 1). */
  cutAfter?: number;
  cuts?: number;
  /** Once the cuts are used up, hang up on every request without an answer (the network went away). */
  hangUpAfterCuts?: boolean;
  /** Answer every request with the whole file (200), as servers without range support do. */
  ignoreRange?: boolean;
  /** Answer a Range request with 206 regardless of If-Range (a broken cache). */
  ignoreIfRange?: boolean;
  /** Send no Content-Length (chunked). */
  chunked?: boolean;
  /** Send headers, then nothing. */
  stall?: boolean;
  /** Send this many body bytes, then nothing more, keeping the connection open (for the next response only). */
  hangAfter?: number;
}

export interface RecordedRequest {
  method: string;
  path: string;
  range?: string;
  ifRange?: string;
  status: number;
  bytes: number;
}

export interface FakeHttpServer {
  url(path: string): string;
  files: Map<string, FakeFile>;
  /** Extra routes: return true when handled. */
  routes: ((req: IncomingMessage, res: ServerResponse) => boolean)[];
  requests: RecordedRequest[];
  bytesSent(path: string): number;
  close(): Promise<void>;
}

export async function startFakeHttpServer(): Promise<FakeHttpServer> {
  const files = new Map<string, FakeFile>();
  const routes: FakeHttpServer['routes'] = [];
  const requests: RecordedRequest[] = [];
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const record: RecordedRequest = {
      method: req.method ?? 'GET',
      path,
      ...(req.headers.range === undefined ? {} : { range: req.headers.range }),
      ...(req.headers['if-range'] === undefined ? {} : { ifRange: String(req.headers['if-range']) }),
      status: 0,
      bytes: 0,
    };
    requests.push(record);
    if (routes.some((route) => route(req, res))) {
      record.status = res.statusCode;
      return;
    }
    const file = files.get(path);
    if (file === undefined) {
      record.status = 404;
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    serve(file, req, res, record);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: (path) => `http://127.0.0.1:${port}${path}`,
    files,
    routes,
    requests,
    bytesSent: (path) => requests.filter((request) => request.path === path).reduce((sum, request) => sum + request.bytes, 0),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function serve(file: FakeFile, req: IncomingMessage, res: ServerResponse, record: RecordedRequest): void {
  if (file.hangUpAfterCuts === true && file.cuts === 0) {
    req.socket.destroy();
    return;
  }
  const size = file.body.length;
  const headers: Record<string, string> = { 'content-type': file.contentType ?? 'application/octet-stream', 'accept-ranges': 'bytes' };
  if (file.etag !== undefined) headers['etag'] = file.etag;
  if (file.lastModified !== undefined) headers['last-modified'] = file.lastModified;
  let start = 0;
  let status = 200;
  const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  const ifRange = req.headers['if-range'];
  const validatorHolds = ifRange === undefined || ifRange === file.etag || ifRange === file.lastModified;
  if (range !== null && file.ignoreRange !== true && (validatorHolds || file.ignoreIfRange === true)) {
    start = Number(range[1]);
    if (start >= size) {
      record.status = 416;
      res.writeHead(416, { 'content-range': `bytes */${size}` }).end();
      return;
    }
    status = 206;
    headers['content-range'] = `bytes ${start}-${size - 1}/${size}`;
  }
  if (file.chunked !== true) headers['content-length'] = String(size - start);
  record.status = status;
  res.writeHead(status, headers);
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  if (file.stall === true) {
    res.flushHeaders();
    return;
  }
  let body = file.body.subarray(start);
  if (file.hangAfter !== undefined) {
    record.bytes = Math.min(file.hangAfter, body.length);
    res.write(body.subarray(0, file.hangAfter));
    delete file.hangAfter;
    return;
  }
  if (file.cutAfter !== undefined && (file.cuts ?? 1) > 0) {
    file.cuts = (file.cuts ?? 1) - 1;
    body = body.subarray(0, file.cutAfter);
    record.bytes = body.length;
    res.write(body, () => setTimeout(() => res.socket?.destroy(), 20));
    return;
  }
  record.bytes = body.length;
  res.end(body);
}

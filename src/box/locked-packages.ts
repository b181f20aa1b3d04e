/**
 * The exact packages Vmfile.lock names, gathered for a rebuild, and handed to mmdebstrap
 * as the only repository it sees.
 *
 * Sources, in order: the package store (box/deb-store.ts: files kept by earlier builds
 * and files brought in with `vmfile lock import`); the recipe's mirrors, which serve the
 * current point release and so often still have a locked file; and an archive-snapshot
 * mirror by the build's date (snapshot.debian.org unless VMFILE_SNAPSHOT_MIRROR or the
 * Vmfile's `snapshotMirror` says otherwise). Every file is checked against the locked
 * sha256 before it is stored or used. A source that cannot be reached is skipped for the
 * rest of the gathering; a package no source has stops the build with the list of what
 * is missing and every place that was tried.
 *
 * The repository: the gathered files in one directory with a Packages index made from
 * their own control fields (box/debs.ts), served on 127.0.0.1 for as long as mmdebstrap
 * runs. apt resolves the recipe's package list against it, and since it holds exactly
 * one version of exactly the locked packages, it can choose nothing newer and nothing
 * else; the rebuilt box is then compared with the lock before it is installed. Served
 * over HTTP rather than as a file:// mirror, because a file:// mirror must be mounted
 * into the chroot at the same path, which leaves directories in the box's tree.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { join, posix } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { run } from '../exec.js';
import { UserError } from '../errors.js';
import type { Reporter } from '../ui/reporter.js';
import { inPhase } from '../ui/reporter.js';
import { debLabel, type DebRef } from '../vmfile/deb-ref.js';
import { debFileName, packagesIndex, poolPath } from './debs.js';
import { linkOrCopy, MAX_DEB_BYTES, storedDeb, storeDeb, type DebOrigin } from './deb-store.js';
import { describeNetworkError, HttpStatusError, request } from './http.js';

export const DEFAULT_SNAPSHOT_MIRROR = 'https://snapshot.debian.org';


export interface PackageSource {
  /** How messages name it: "the package store", "http://deb.debian.org/debian", ... */
  label: string;
  origin: DebOrigin;
  /** The URL of a package in it. */
  urlOf: (deb: DebRef) => string;
}

/**
 * The network sources for a recipe's packages: each distinct archive root of its
 * `deb URL SUITE COMPONENTS` lines, then the same archives on the snapshot mirror at the
 * time the locked box was built (snapshot.debian.org/archive/debian/20261123T101500Z/...).
 */
export function networkSources(recipeSources: readonly string[], built: string | undefined, snapshotMirror: string): PackageSource[] {
  const roots = [...new Set(recipeSources.map((line) => line.trim().split(/\s+/)[1]).filter((url): url is string => url !== undefined && /^https?:\/\//.test(url)))].map((url) => url.replace(/\/+$/, ''));
  const sources: PackageSource[] = roots.map((root) => ({ label: root, origin: 'mirror', urlOf: (deb) => `${root}/${poolPath(deb)}` }));
  const stamp = built === undefined ? undefined : snapshotStamp(built);
  if (stamp === undefined) return sources;
  const mirror = snapshotMirror.replace(/\/+$/, '');
  for (const root of roots) {
    const archive = root.split('/').pop() ?? 'debian';
    sources.push({ label: `${mirror}/archive/${archive}/${stamp}`, origin: 'snapshot', urlOf: (deb) => `${mirror}/archive/${archive}/${stamp}/${poolPath(deb)}` });
  }
  return sources;
}

/** "2026-11-23T10:15:00.123Z" as snapshot.debian.org spells a time: 20261123T101500Z. */
export function snapshotStamp(iso: string): string | undefined {
  const time = Date.parse(iso);
  if (Number.isNaN(time)) return undefined;
  return new Date(time).toISOString().replace(/\.\d+Z$/, 'Z').replace(/[-:]/g, '');
}

export interface GatherOptions {
  home: string;
  /** Where downloads land before they are checked (the build's staging directory). */
  scratch: string;
  sources: readonly PackageSource[];
  label: string;
  reporter: Reporter;
  /** Per request: milliseconds without a byte before a source counts as unreachable. */
  idleTimeoutMs?: number;
}

/**
 * Every locked package as a checked file, from the first source that has it. Throws,
 * having stored what it did find, when any package is in no source.
 */
export async function gatherLockedDebs(debs: readonly DebRef[], options: GatherOptions): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  const problems: string[] = [];
  const wanted: DebRef[] = [];
  for (const deb of debs) {
    const stored = await storedDeb(options.home, deb);
    if ('path' in stored) found.set(deb.sha256, stored.path);
    else {
      if ('tampered' in stored) {
        problems.push(stored.tampered);
        options.reporter.notice(`${options.label}: refused ${stored.tampered}; fetching it again`);
      }
      wanted.push(deb);
    }
  }
  const unreachable = new Map<string, string>();
  if (wanted.length > 0) {
    await inPhase(options.reporter, options.label, `Fetching ${wanted.length} locked package${wanted.length === 1 ? '' : 's'} the store does not have`, async (phase) => {
      let done = 0;
      for (const deb of wanted) {
        for (const source of options.sources) {
          if (unreachable.has(source.label)) continue;
          const outcome = await fetchDeb(deb, source, options);
          if ('path' in outcome) {
            found.set(deb.sha256, outcome.path);
            break;
          }
          if ('unreachable' in outcome) unreachable.set(source.label, outcome.unreachable);
          if ('wrong' in outcome) problems.push(outcome.wrong);
        }
        done += 1;
        phase.progress(`${done}/${wanted.length} ${deb.name}`);
      }
    });
  }
  const missing = debs.filter((deb) => !found.has(deb.sha256));
  if (missing.length === 0) return found;
  const tried = ['the package store', ...options.sources.map((source) => (unreachable.has(source.label) ? `${source.label} (unreachable: ${unreachable.get(source.label) ?? ''})` : source.label))];
  throw new UserError(
    `${options.label}: ${missing.length} locked package${missing.length === 1 ? ' is' : 's are'} in none of the places tried, so the locked box cannot be rebuilt; nothing was installed:\n` +
      missing.map((deb) => `  - ${debLabel(deb)} (sha256 ${deb.sha256})`).join('\n') +
      `\ntried: ${tried.join('; ')}` +
      (problems.length > 0 ? `\nrefused:\n${problems.map((line) => `  - ${line}`).join('\n')}` : ''),
    {
      hint: 'on a host that has them (the one that wrote Vmfile.lock): vmfile lock export --output packages.tar; then here: vmfile lock import packages.tar. Or set VMFILE_SNAPSHOT_MIRROR to an archive-snapshot mirror you can reach',
    },
  );
}

type FetchOutcome = { path: string } | { absent: true } | { unreachable: string } | { wrong: string };

async function fetchDeb(deb: DebRef, source: PackageSource, options: GatherOptions): Promise<FetchOutcome> {
  const url = source.urlOf(deb);
  const temporary = join(options.scratch, `fetch-${deb.sha256}.deb`);
  try {
    const response = await request(url, 'GET', {}, { what: `package ${debLabel(deb)}`, idleTimeoutMs: options.idleTimeoutMs ?? 30_000, maxRedirects: 5 });
    let bytes = 0;
    const limit = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        bytes += chunk.length;
        callback(bytes > MAX_DEB_BYTES ? new Error(`more than ${MAX_DEB_BYTES} bytes`) : null, chunk);
      },
    });
    await pipeline(response, limit, createWriteStream(temporary, { mode: 0o600 }));
    const stored = await storeDeb(options.home, temporary, deb, source.origin);
    if ('problem' in stored) return { wrong: `${url}: ${stored.problem}` };
    return stored;
  } catch (error) {
    if (error instanceof HttpStatusError && error.status >= 400 && error.status < 500) return { absent: true };
    return { unreachable: error instanceof HttpStatusError ? error.message : describeNetworkError(error) };
  } finally {
    await rm(temporary, { force: true });
  }
}

/**
 * A flat repository of exactly `files` (sha256 -> path) in `dir`: each file under its
 * package name, and a Packages index and Release file for apt (with `options.date` as its
 * Date, which apt in a guest wants; a box build gives none). The Release names the
 * recipe's suite: mmdebstrap picks the Essential:yes set only from an archive whose
 * suite or codename is the one it builds.
 */
export async function writeLocalRepository(dir: string, suite: string, debs: readonly DebRef[], files: ReadonlyMap<string, string>, options: { date?: string } = {}): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const entries: { control: string; file: string; size: number; sha256: string }[] = [];
  for (const deb of debs) {
    const path = files.get(deb.sha256);
    if (path === undefined) throw new Error(`no file for ${debLabel(deb)}`);
    const file = debFileName(deb);
    await linkOrCopy(path, join(dir, file));
    const { stdout } = await run('dpkg-deb', ['-f', path], { purpose: `read the control fields of ${debLabel(deb)}` });
    entries.push({ control: stdout, file, size: (await stat(path)).size, sha256: deb.sha256, ...(deb.priority === undefined ? {} : { priority: deb.priority }) });
  }
  const index = packagesIndex(entries);
  await writeFile(join(dir, 'Packages'), index);
  const digest = createHash('sha256').update(index).digest('hex');
  await writeFile(join(dir, 'Release'), `Origin: vmfile\nLabel: Vmfile.lock\n${options.date === undefined ? '' : `Date: ${options.date}\n`}Suite: ${suite}\nCodename: ${suite}\nSHA256:\n ${digest} ${Buffer.byteLength(index)} Packages\n`);
}

/** Serves `dir` on 127.0.0.1 (plain files, no listing) until closed; resolves with its URL. */
export async function serveRepository(dir: string): Promise<{ url: string; close: () => Promise<void> }> {
  const server: Server = createServer((request, response) => {
    // apt asks for a flat repository's files as /./Packages and /./NAME.deb, "+" and "~" escaped.
    let name: string;
    try {
      name = posix.normalize(`/${decodeURIComponent((request.url ?? '/').split('?')[0] ?? '')}`).replace(/^\/+/, '');
    } catch {
      name = '';
    }
    if (!/^[A-Za-z0-9][A-Za-z0-9+.~_-]*$/.test(name) || (request.method !== 'GET' && request.method !== 'HEAD')) {
      response.writeHead(404).end();
      return;
    }
    const path = join(dir, name);
    stat(path).then(
      (info) => {
        response.writeHead(200, { 'content-length': info.size, 'content-type': 'application/octet-stream' });
        if (request.method === 'HEAD') response.end();
        else createReadStream(path).on('error', () => response.destroy()).pipe(response);
      },
      () => response.writeHead(404).end(),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** What mmdebstrap writes as /etc/apt/sources.list for one-line MIRROR arguments. */
export function sourcesListText(recipeSources: readonly string[]): string {
  return `${recipeSources.join('\n\n')}\n`;
}

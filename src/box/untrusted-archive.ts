/**
 * Unpacking a box archive from outside (a Vagrant .box, a vmfile box file). Its
 * listing is read first and every member checked before anything is written: only
 * regular files with plain names at the top of the archive (and the "./" directory),
 * no links, devices, FIFOs or subdirectories, no setuid, setgid or sticky bits, no
 * absolute paths or "..", no name twice, and sizes bounded. Then tar extracts just those
 * members, without their owners or permissions and without extended attributes, and the
 * unpacked directory is walked again with lstat, so an archive that changed between the
 * two reads is caught too. Compressed archives (gzip, bzip2, xz, zstd) are read by tar
 * itself. What the members add up to must fit the room there is (space.ts), and the
 * free space is watched while tar writes: a small download may unpack to a lot.
 */
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../exec.js';
import { ExternalCommandError, UserError } from '../errors.js';
import { BOX_METADATA_FILE, VAGRANT_METADATA_FILE } from '../store/layout.js';
import { BOX_FILE_PATTERN, printable } from '../vmfile/box-metadata.js';
import { formatSize } from '../vmfile/size.js';
import { describeSpace, MAX_BOX_BYTES, SPACE_HINT, spaceBudget, spaceRunningOut, statfsSpace, watchSpace, type SpaceProbe } from './space.js';

export type MemberType = 'file' | 'directory' | 'symbolic link' | 'hard link' | 'character device' | 'block device' | 'FIFO' | 'other';

export interface ArchiveMember {
  /** As tar lists it (escaped, "./" kept). */
  name: string;
  type: MemberType;
  /** ls-style permission string, e.g. "rwsr-xr-x". */
  permissions: string;
  /** Bytes; 0 for devices. */
  size: number;
  /** Where a link points. */
  target?: string;
}

export interface ArchiveLimits {
  /** All members together. */
  totalBytes: number;
  /** When totalBytes is the free space rather than the size cap: why, for the message ("the file system of … has …"). */
  room?: string;
  /** Each metadata file (box.json, metadata.json, Vagrantfile). */
  metadataBytes: number;
  members: number;
}

export const MAX_METADATA_BYTES = 1024 ** 2;
const MAX_MEMBERS = 32;
const METADATA_FILES = new Set([BOX_METADATA_FILE, VAGRANT_METADATA_FILE, 'Vagrantfile']);

const TYPES: Record<string, MemberType> = { '-': 'file', d: 'directory', l: 'symbolic link', h: 'hard link', c: 'character device', b: 'block device', p: 'FIFO' };
// GNU tar -tv with --numeric-owner --full-time: "-rw-r--r-- 0/0   1234 2026-11-05 10:00:00 ./box.json"
const LINE = /^(.)(\S{9})\s+\d+\/\d+\s+(\d+|\d+,\d+)\s+(?:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d|-?\d+)\s(.*)$/;

/** The members in a `tar --list --verbose` listing, and the lines that are not members as tar prints them. Pure. */
export function parseTarListing(text: string): { members: ArchiveMember[]; unreadable: string[] } {
  const members: ArchiveMember[] = [];
  const unreadable: string[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const match = LINE.exec(line);
    if (match === null) {
      unreadable.push(line);
      continue;
    }
    const [, kind = '', permissions = '', size = '', rest = ''] = match;
    const type = TYPES[kind] ?? 'other';
    const separator = type === 'symbolic link' ? ' -> ' : type === 'hard link' ? ' link to ' : undefined;
    const at = separator === undefined ? -1 : rest.indexOf(separator);
    const member: ArchiveMember = { name: at < 0 ? rest : rest.slice(0, at), type, permissions, size: size.includes(',') ? 0 : Number(size) };
    if (at >= 0 && separator !== undefined) member.target = rest.slice(at + separator.length);
    members.push(member);
  }
  return { members, unreadable };
}

/**
 * The members of the tar `file` as tar lists them (parseTarListing), or why tar cannot
 * read it (its first line: no such file, not a tar archive). The C locale fixes the
 * listing's date format.
 */
export async function listTar(file: string, purpose: string): Promise<{ members: ArchiveMember[]; unreadable: string[] } | { error: string }> {
  try {
    const listing = await run('tar', ['--list', '--verbose', '--numeric-owner', '--full-time', '--absolute-names', '--quoting-style=escape', `--file=${file}`], {
      purpose,
      env: { ...process.env, LC_ALL: 'C' } as Record<string, string>,
    });
    return parseTarListing(listing.stdout);
  } catch (error) {
    const said = error instanceof ExternalCommandError ? error.stderr.trim().split('\n')[0] : undefined;
    return { error: said ?? (error instanceof Error ? (error.message.split('\n')[0] ?? '') : String(error)) };
  }
}

/**
 * The error for an archive from outside that is refused: `what` it is not ("a package
 * bundle"), each problem (the first 20), what became of it (`outcome`), and the hint.
 */
export function refusedArchive(file: string, what: string, problems: readonly string[], outcome: string, hint: string): UserError {
  const listed = problems.slice(0, 20).map((line) => `  - ${line}`).join('\n');
  return new UserError(`${JSON.stringify(printable(file, 200))} is not ${what} vmfile accepts:\n${listed}${problems.length > 20 ? `\n  - and ${problems.length - 20} more` : ''}\n${outcome}`, { hint });
}

/** JSON text from an archive: its value, or undefined when it does not parse (its schema then says what is wrong). */
export function parseUntrustedJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** A member's name without a leading "./", or undefined for the top directory itself. */
function plainPart(name: string): string | undefined {
  const stripped = name.replace(/^(\.\/)+/, '');
  return stripped === '' || stripped === '.' ? undefined : stripped;
}

/** Every reason to refuse these members, one phrase each; empty when they may be unpacked. Pure. */
export function memberProblems(members: readonly ArchiveMember[], limits: ArchiveLimits): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  let total = 0;
  for (const member of members) {
    const shown = JSON.stringify(printable(member.name, 200));
    const plain = plainPart(member.name);
    if (member.type === 'directory' && plain === undefined) continue;
    if (member.name.startsWith('/')) problems.push(`${shown} is an absolute path`);
    else if (member.name.split('/').includes('..')) problems.push(`${shown} points outside the archive ("..")`);
    else if (member.type === 'directory') problems.push(`${shown} is a directory (a box holds plain files only)`);
    else if (plain === undefined || !BOX_FILE_PATTERN.test(plain)) problems.push(`${shown} is not a plain file name`);
    if (member.type !== 'file' && member.type !== 'directory') {
      const what = member.type === 'other' ? 'a member of a type other than file' : `a ${member.type}`;
      problems.push(`${shown} is ${what}${member.target === undefined ? '' : ` to ${JSON.stringify(printable(member.target, 200))}`}`);
    }
    const special = specialBits(member.permissions);
    if (special.length > 0) problems.push(`${shown} has the ${special.join(' and ')} bit${special.length > 1 ? 's' : ''}`);
    const key = plain ?? member.name;
    if (seen.has(key)) problems.push(`${shown} appears twice`);
    seen.add(key);
    if (plain !== undefined && METADATA_FILES.has(plain) && member.size > limits.metadataBytes) {
      problems.push(`${shown} is ${bytes(member.size)}, more than the ${formatSize(limits.metadataBytes)} a metadata file may have`);
    }
    total += member.size;
  }
  if (members.length > limits.members) problems.push(`it has ${members.length} members, more than ${limits.members}`);
  if (total > limits.totalBytes) problems.push(`its members add up to ${bytes(total)}, more than the ${formatSize(limits.totalBytes)} ${limits.room === undefined ? 'it may take' : `there is room for: ${limits.room}`}`);
  return problems;
}

/** Exact near a limit: "1.0MiB" alone does not show why it is more than 1MiB. */
function bytes(count: number): string {
  return count < 1024 ? `${count} bytes` : `${formatSize(count)} (${count} bytes)`;
}

function specialBits(permissions: string): string[] {
  const bits: string[] = [];
  if (/[sS]/.test(permissions[2] ?? '')) bits.push('setuid');
  if (/[sS]/.test(permissions[5] ?? '')) bits.push('setgid');
  if (/[tT]/.test(permissions[8] ?? '')) bits.push('sticky');
  return bits;
}

export interface ArchiveOrigin {
  box: string;
  file: string;
}

/**
 * Unpacks the archive `file` into the empty directory `dir` after checking its listing,
 * then checks what was unpacked. Resolves with the names of the unpacked files; a
 * UserError naming the box, the file and every problem otherwise. `freeSpace` reads the
 * file system (tests stand in a small one).
 */
export async function unpackUntrusted(file: string, dir: string, origin: ArchiveOrigin, freeSpace: SpaceProbe = statfsSpace): Promise<string[]> {
  const budget = await spaceBudget(dir, MAX_BOX_BYTES, freeSpace);
  const room = budget.bytes < MAX_BOX_BYTES ? describeSpace(budget) : undefined;
  const limits: ArchiveLimits = { totalBytes: budget.bytes, ...(room === undefined ? {} : { room }), metadataBytes: MAX_METADATA_BYTES, members: MAX_MEMBERS };
  const listing = await tarOutput(['--list', '--verbose', '--numeric-owner', '--full-time', '--absolute-names', '--quoting-style=escape', `--file=${file}`], origin);
  const { members, unreadable } = parseTarListing(listing);
  const problems = [...unreadable.slice(0, 3).map((line) => `tar lists ${JSON.stringify(printable(line, 200))}, which is not a file`), ...memberProblems(members, limits)];
  const files = members.filter((member) => member.type === 'file').map((member) => member.name);
  // tar given no member names would extract every member.
  if (files.length === 0) problems.push('it holds no files');
  const tooLarge = members.reduce((sum, member) => sum + member.size, 0) > limits.totalBytes;
  refuseIfAny(problems, origin, 'nothing was unpacked', tooLarge && room !== undefined ? SPACE_HINT : undefined);
  // The listing bounds what tar writes; the watch catches anything else filling the disk meanwhile.
  const controller = new AbortController();
  let low: string | undefined;
  const stop = watchSpace(budget, freeSpace, (reason) => {
    low = reason;
    controller.abort();
  });
  const extract = ['--extract', `--file=${file}`, `--directory=${dir}`, '--no-same-owner', '--no-same-permissions', '--no-overwrite-dir', '--no-xattrs', '--no-acls', '--no-selinux', '--', ...files];
  try {
    await tarOutput(extract, origin, controller.signal);
  } catch (error) {
    if (low === undefined) throw error;
  } finally {
    stop();
  }
  low ??= await spaceRunningOut(budget, freeSpace);
  if (low !== undefined) throw new UserError(`box ${origin.box}: unpacking ${origin.file} stopped: ${low}. What was unpacked is removed and nothing was added`, { hint: SPACE_HINT });
  refuseIfAny(await unpackedProblems(dir, limits), origin, 'what was unpacked was removed');
  return files.map((name) => plainPart(name) ?? name);
}

/** The same rules, checked on the unpacked files themselves (lstat: links are never followed). */
export async function unpackedProblems(dir: string, limits: ArchiveLimits): Promise<string[]> {
  const problems: string[] = [];
  let total = 0;
  for (const name of await readdir(dir)) {
    const info = await lstat(join(dir, name));
    const shown = JSON.stringify(printable(name, 200));
    if (!info.isFile()) problems.push(`${shown} was unpacked as something other than a regular file`);
    else if (info.nlink !== 1) problems.push(`${shown} was unpacked as a hard link`);
    if ((info.mode & 0o7000) !== 0) problems.push(`${shown} was unpacked with a setuid, setgid or sticky bit`);
    if (!BOX_FILE_PATTERN.test(name)) problems.push(`${shown} is not a plain file name`);
    if (METADATA_FILES.has(name) && info.size > limits.metadataBytes) problems.push(`${shown} is larger than ${formatSize(limits.metadataBytes)}`);
    if (info.isFile()) total += info.size;
  }
  if (total > limits.totalBytes) problems.push(`the unpacked files add up to ${bytes(total)}, more than ${formatSize(limits.totalBytes)}${limits.room === undefined ? '' : ` there is room for: ${limits.room}`}`);
  return problems;
}

function refuseIfAny(problems: readonly string[], origin: ArchiveOrigin, outcome: string, hint?: string): void {
  if (problems.length === 0) return;
  throw new UserError(`box ${origin.box}: ${origin.file} is not a box archive vmfile accepts: ${problems.join('; ')}. ${outcome[0]?.toUpperCase() ?? ''}${outcome.slice(1)} and nothing was added`, {
    hint: hint ?? 'a box archive holds only regular files at its top (box.json and disk.qcow2, or metadata.json and box.img); get the box from its publisher again, or repack it',
  });
}

async function tarOutput(args: readonly string[], origin: ArchiveOrigin, signal?: AbortSignal): Promise<string> {
  try {
    // The C locale fixes the listing's date format.
    return (await run('tar', args, { purpose: `read ${origin.file}`, env: { ...process.env, LC_ALL: 'C' } as Record<string, string>, ...(signal === undefined ? {} : { signal }) })).stdout;
  } catch (error) {
    if (!(error instanceof ExternalCommandError)) throw error;
    throw new UserError(`box ${origin.box}: ${origin.file} cannot be read as an archive: ${printable(error.stderr.trim(), 300)}`, {
      hint: 'the file is damaged or incomplete; get it again; nothing was added',
      cause: error,
    });
  }
}

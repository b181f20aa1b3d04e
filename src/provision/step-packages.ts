/**
 * The Debian packages a provisioning step installs, pinned. The guest's package list is
 * read before and after the step (dpkg-query), and every package the step added or moved
 * to another version is taken, as its .deb, into the host's package store
 * (box/deb-store.ts), to be recorded under the step in Vmfile.lock.
 *
 * A package the lock already pins at that version (installed from the pinned source,
 * provision/pinned-source.ts) is the store's file already. Any other is apt's own copy
 * (/var/cache/apt/archives) or, where apt did not keep it (the `apt` command deletes
 * what it downloaded), `apt-get download` of that exact version while the mirror still
 * has it. A package none of these gives is recorded as unpinned, by name. The guest is
 * the user's own machine, but what it hands over is still checked: each file is bounded
 * in size, and the host reads its control fields itself and keeps it only when they name
 * the package the guest listed.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { debsDir, hasStoredDeb, MAX_DEB_BYTES, storeDeb } from '../box/deb-store.js';
import { debFromControl, parseControl } from '../box/debs.js';
import { GuestError } from '../errors.js';
import { run } from '../exec.js';
import type { SshSession } from '../ssh/client.js';
import { shellCommand } from '../ssh/quote.js';
import { sha256File } from '../store/digest.js';
import { ARCHITECTURE, debLabel, PACKAGE_NAME, PACKAGE_VERSION, type DebRef } from '../vmfile/deb-ref.js';
import type { StepInstall } from '../vmfile/lock-steps.js';

/** An installed package as dpkg lists it. */
export interface Installed {
  name: string;
  version: string;
  architecture: string;
}

/** Installed packages by "name:architecture". */
export type InstalledSet = ReadonlyMap<string, Installed>;

/** Lists installed packages, one per line; prints nothing on a guest without dpkg. */
export const INSTALLED_QUERY = "command -v dpkg-query >/dev/null 2>&1 || exit 0; dpkg-query -W -f '${db:Status-Abbrev}\\t${Package}\\t${Version}\\t${Architecture}\\n'";

/** The installed packages in dpkg-query's output; lines of packages not fully installed, or not shaped as Debian's, are left out. */
export function parseInstalled(stdout: string): InstalledSet {
  const installed = new Map<string, Installed>();
  for (const line of stdout.split('\n')) {
    const [status, name, version, architecture] = line.split('\t');
    if (status === undefined || !/^[ih]i/.test(status) || name === undefined || version === undefined || architecture === undefined) continue;
    if (!PACKAGE_NAME.test(name) || !PACKAGE_VERSION.test(version) || !ARCHITECTURE.test(architecture)) continue;
    installed.set(`${name}:${architecture}`, { name, version, architecture });
  }
  return installed;
}

/** What `after` has that `before` had not, or had at another version, sorted. */
export function addedOrChanged(before: InstalledSet, after: InstalledSet): Installed[] {
  return [...after.entries()]
    .filter(([key, now]) => before.get(key)?.version !== now.version)
    .map(([, now]) => now)
    .sort((a, b) => (`${a.name}:${a.architecture}` < `${b.name}:${b.architecture}` ? -1 : 1));
}

export async function installedPackages(session: SshSession): Promise<InstalledSet> {
  const result = await session.capture(INSTALLED_QUERY);
  if (result.code !== 0) throw new GuestError(`could not list the guest's installed packages (dpkg-query exit ${result.code}): ${result.stderr.trim().slice(0, 300)}`);
  return parseInstalled(result.stdout);
}

/**
 * For each "name version architecture" in its arguments, prints the path of that
 * package's file in the guest, or nothing, then NUL. A file counts only when its list of
 * file digests (the md5sums member) is the one dpkg keeps for the installed package:
 * a package the step built and installed itself (`dpkg -i`) under a version the archive
 * also has is not pinned as the archive's file. Runs as the login user: apt's files are
 * world-readable, and `apt-get download` writes into the scratch directory (the first
 * argument) only. VMFILE_DPKG_INFO stands in for dpkg's directory in tests.
 */
export const LOCATE_SCRIPT = [
  'scratch=$1; shift; mkdir -p "$scratch" && cd "$scratch" || exit 3',
  'info=${VMFILE_DPKG_INFO:-/var/lib/dpkg/info}',
  'installed() { local listed=$info/$2:$3.md5sums; [ -e "$listed" ] || listed=$info/$2.md5sums; if [ -e "$listed" ]; then dpkg-deb -I "$1" md5sums 2>/dev/null | cmp -s - "$listed"; else ! dpkg-deb -I "$1" md5sums >/dev/null 2>&1; fi; }',
  'while [ $# -ge 3 ]; do',
  '  name=$1 version=$2 arch=$3; shift 3',
  '  file="${name}_${version/:/%3a}_${arch}.deb" found=',
  '  [ -f "/var/cache/apt/archives/$file" ] && installed "/var/cache/apt/archives/$file" "$name" "$arch" && found=/var/cache/apt/archives/$file',
  '  if [ -z "$found" ]; then spec="$name:$arch=$version"; [ "$arch" = all ] && spec="$name=$version"; apt-get download -q "$spec" >/dev/null 2>&1; [ -f "$scratch/$file" ] && installed "$scratch/$file" "$name" "$arch" && found=$scratch/$file; fi',
  '  printf "%s\\0" "$found"',
  'done',
].join('\n');

/**
 * Takes the files of `changed` into the package store under `home` and says what the
 * step installed: each package with its digest, or unpinned. A package `known` already
 * pins at the same version (the lock's, installed from the pinned source) is not copied
 * again when the store has it.
 */
export async function pinInstalled(session: SshSession, changed: readonly Installed[], options: { home: string; known: readonly DebRef[]; where: string }): Promise<StepInstall> {
  const packages: DebRef[] = [];
  const wanted: Installed[] = [];
  for (const deb of changed) {
    const same = options.known.find((ref) => ref.name === deb.name && ref.version === deb.version && ref.architecture === deb.architecture);
    if (same !== undefined && (await hasStoredDeb(options.home, same.sha256)) !== undefined) packages.push(same);
    else wanted.push(deb);
  }
  if (wanted.length === 0) return { packages, unpinned: [] };
  const scratch = `/tmp/vmfile-debs-${randomBytes(6).toString('hex')}`;
  const located = await session.capture(shellCommand(['bash', '-c', LOCATE_SCRIPT, 'vmfile-locate', scratch, ...wanted.flatMap((deb) => [deb.name, deb.version, deb.architecture])]));
  if (located.code !== 0) throw new GuestError(`${options.where}: could not find the files of the packages the step installed (exit ${located.code}): ${located.stderr.trim().slice(0, 300)}`);
  const paths = located.stdout.split('\0');
  const unpinned: string[] = [];
  await mkdir(debsDir(options.home), { recursive: true, mode: 0o700 });
  const incoming = await mkdtemp(join(debsDir(options.home), '.incoming-'));
  try {
    for (const [index, deb] of wanted.entries()) {
      const remote = paths[index] ?? '';
      const pinned = remote.startsWith('/') ? await takeDeb(session, remote, deb, options.home, join(incoming, String(index))) : undefined;
      if (pinned === undefined) unpinned.push(debLabel(deb));
      else packages.push(pinned);
    }
  } finally {
    await rm(incoming, { recursive: true, force: true });
    await session.exec(shellCommand(['rm', '-rf', '--', scratch])).catch(() => undefined);
  }
  return { packages, unpinned };
}

/** Copies one file from the guest and stores it, when its control fields name `deb`; else undefined (unpinned). */
async function takeDeb(session: SshSession, remote: string, deb: Installed, home: string, local: string): Promise<DebRef | undefined> {
  await session.download(remote, local, MAX_DEB_BYTES);
  const { stdout } = await run('dpkg-deb', ['-f', local], { purpose: `read the control fields of ${debLabel(deb)}`, allowExitCodes: [1, 2] });
  const ref = debFromControl(parseControl(stdout), await sha256File(local));
  if ('problem' in ref || ref.name !== deb.name || ref.version !== deb.version || ref.architecture !== deb.architecture) return undefined;
  const stored = await storeDeb(home, local, ref, 'step');
  return 'path' in stored ? ref : undefined;
}

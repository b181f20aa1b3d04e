/**
 * The packages Vmfile.lock pins for a machine's steps, given to its guest before the
 * first step runs. The .deb files come from the host's package store, each checked
 * against its digest, and go up with a Packages index over the machine's own SSH
 * session (so every driver, local or remote, works the same). In the guest they become
 * a local apt source in /var/lib/vmfile/pinned, root's and read-only to others, with
 * apt preferences that pin each locked version at priority 1001. An unchanged step
 * (`apt-get install -y r-base-core`) then installs exactly the locked versions, even
 * when the mirror has newer ones or cannot be reached. apt learns the source at once
 * (an update of that source alone), so a step that runs no `apt-get update` sees it.
 *
 * Pinned packages this host's store lacks are first asked of the Debian archives the
 * box's recipe names (a point release's packages stay there until the next), each
 * checked against its digest; any still missing are named, and their steps get them
 * from the mirror, unpinned.
 *
 * A guest that has the same source already (the layer it started from, or the last
 * provisioning) is not sent it again: the source carries the digest of its index.
 *
 * The index is vmfile's, made from files whose digests the lock names, so the source is
 * marked trusted: apt still checks every file against the index's SHA256. The source and
 * the pins stay in the guest afterwards, so later installs keep the locked versions.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hasStoredDeb, storedDeb } from '../box/deb-store.js';
import { gatherLockedDebs, networkSources, writeLocalRepository } from '../box/locked-packages.js';
import { hasRecipe, readRecipe } from '../box/recipes.js';
import { GuestError, UserError } from '../errors.js';
import type { Reporter } from '../ui/reporter.js';
import type { SshSession } from '../ssh/client.js';
import { shellCommand } from '../ssh/quote.js';
import { stagingDir } from '../store/layout.js';
import { debLabel, type DebRef } from '../vmfile/deb-ref.js';

export const PINNED_DIR = '/var/lib/vmfile/pinned';
const SOURCE_LIST = '/etc/apt/sources.list.d/vmfile-pinned.list';
const PREFERENCES = '/etc/apt/preferences.d/vmfile-pinned';

/** apt preferences holding each package at its locked version, above any archive's (1001 also allows a downgrade). */
export function pinPreferences(debs: readonly DebRef[]): string {
  const stanzas = new Set(debs.map((deb) => `Package: ${deb.name}\nPin: version ${deb.version}\nPin-Priority: 1001\n`));
  return [...stanzas].sort().join('\n');
}

/**
 * Run as root: moves the uploaded repository (the first argument) into place, names it
 * to apt, installs its preferences and reads its index; the old source is replaced whole.
 */
export const INSTALL_SOURCE_SCRIPT = [
  'set -e',
  `upload=$1 dir=${PINNED_DIR}`,
  'mkdir -p "${dir%/*}"',
  'rm -rf "$dir.new" && cp -r "$upload" "$dir.new" && rm -rf "$upload"',
  'chown -R root:root "$dir.new" && chmod -R u=rwX,go=rX "$dir.new"',
  'rm -rf "$dir" && mv "$dir.new" "$dir"',
  `printf 'deb [trusted=yes] file:%s ./\\n' "$dir" > ${SOURCE_LIST}`,
  `cp "$dir/preferences" ${PREFERENCES}`,
  `apt-get update -q -o Dir::Etc::SourceList=${SOURCE_LIST} -o Dir::Etc::SourceParts=- -o APT::Get::List-Cleanup=0 >/dev/null`,
].join('\n');

/**
 * Gives the guest the pinned packages. Returns those it could give and, by label, those
 * the host's store does not hold (their steps get them from the mirror, unpinned) or
 * holds damaged (removed from the store, and named).
 */
export async function stagePinnedSource(session: SshSession, debs: readonly DebRef[], options: { home: string; where: string }): Promise<{ staged: DebRef[]; missing: string[] }> {
  const staged: DebRef[] = [];
  const missing: string[] = [];
  const files = new Map<string, string>();
  for (const deb of debs) {
    const found = await storedDeb(options.home, deb);
    if ('path' in found) {
      staged.push(deb);
      files.set(deb.sha256, found.path);
    } else missing.push('tampered' in found ? found.tampered : debLabel(deb));
  }
  if (staged.length === 0) return { staged, missing };
  await mkdir(stagingDir(options.home), { recursive: true, mode: 0o700 });
  const local = await mkdtemp(join(stagingDir(options.home), 'pinned-'));
  try {
    const repository = join(local, 'pinned');
    // apt in the guest warns of a Release without a date; any fixed one will do (the index has no expiry).
    await writeLocalRepository(repository, 'vmfile-pinned', staged, files, { date: 'Thu, 01 Jan 1970 00:00:00 UTC' });
    const preferences = pinPreferences(staged);
    await writeFile(join(repository, 'preferences'), preferences);
    // The guest has this very source already (a layer's, or the last provisioning's): nothing to send.
    const digest = createHash('sha256').update(await readFile(join(repository, 'Packages'))).update(preferences).digest('hex');
    const present = await session.capture(shellCommand(['cat', `${PINNED_DIR}/digest`]));
    if (present.code === 0 && present.stdout.trim() === digest) return { staged, missing };
    await writeFile(join(repository, 'digest'), `${digest}\n`);
    const upload = `/tmp/vmfile-pinned-${randomBytes(6).toString('hex')}`;
    await session.upload(repository, upload);
    const result = await session.capture(shellCommand(['sudo', '-n', 'bash', '-c', INSTALL_SOURCE_SCRIPT, 'vmfile-pinned', upload]));
    if (result.code !== 0) throw new GuestError(`${options.where}: could not set up the pinned packages as an apt source in the guest (exit ${result.code}): ${result.stderr.trim().slice(0, 500)}`);
  } finally {
    await rm(local, { recursive: true, force: true });
  }
  return { staged, missing };
}

/** The `deb URL SUITE COMPONENTS` lines of the recipe a box was built from, when vmfile has that recipe. */
export async function recipeSources(recipe: string | undefined): Promise<readonly string[] | undefined> {
  if (recipe === undefined || !(await hasRecipe(recipe))) return undefined;
  return (await readRecipe(recipe)).sources;
}

/** Fetches into the store the pinned packages it lacks, from the archives `sources` name; what none has stays missing (stagePinnedSource names it). */
export async function fetchMissingPins(debs: readonly DebRef[], options: { home: string; sources: readonly string[] | undefined; reporter: Reporter; label: string }): Promise<void> {
  const wanted: DebRef[] = [];
  for (const deb of debs) if ((await hasStoredDeb(options.home, deb.sha256)) === undefined) wanted.push(deb);
  if (wanted.length === 0 || options.sources === undefined) return;
  await mkdir(stagingDir(options.home), { recursive: true, mode: 0o700 });
  const scratch = await mkdtemp(join(stagingDir(options.home), 'pins-'));
  try {
    await gatherLockedDebs(wanted, { home: options.home, scratch, sources: networkSources(options.sources, undefined, ''), label: options.label, reporter: options.reporter, idleTimeoutMs: 15_000 });
  } catch (error) {
    // Those no archive has are named when the source is set up.
    if (!(error instanceof UserError)) throw error;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

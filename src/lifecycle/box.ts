/**
 * A machine's box before anything is created or booted: found in the store (or built
 * from its recipe on first use), then checked against Vmfile.lock.
 */
import { buildBox, type LockedBuild } from '../box/build.js';
import { hasRecipe, listRecipes } from '../box/recipes.js';
import { addBoxFromUrl, type NetworkSettings } from '../box/remote.js';
import { boxFacts, findBox, listBoxes, type InstalledBox } from '../box/store.js';
import { ConfigError, UserError } from '../errors.js';
import { lockFilePath } from '../store/layout.js';
import { readLockFile, writeLockFile } from '../store/lockfile.js';
import type { Reporter } from '../ui/reporter.js';
import type { BoxRef, MachineConfig, Project } from '../vmfile/config.js';
import { settleLock, type LockEntry, type LockOutcome } from '../vmfile/lock.js';
import { checkHttpUrl, redactUrl } from '../vmfile/box-source.js';
import { formatConstraints } from '../vmfile/version.js';

/**
 * The box a machine needs: from the store, downloaded from the Vmfile's url, or built
 * from its recipe on first use (a box with a recipe is never downloaded). `fromLock`
 * says the version came from Vmfile.lock rather than the Vmfile: a locked version that is
 * not installed is downloaded or built under that version (another host, same lock), and
 * the lock check that follows says whether it came out the same.
 */
export async function ensureBox(
  home: string,
  ref: BoxRef,
  options: { reporter: Reporter; machine: string; fromLock?: boolean; network?: NetworkSettings; lockEntry?: LockEntry; snapshotMirror?: string },
): Promise<InstalledBox> {
  if (ref.url !== undefined && (await hasRecipe(ref.name))) {
    throw new ConfigError(`machine "${options.machine}": box ${ref.name} is built here from vmfile's own recipe, so it is never downloaded (the Vmfile gives it a url)`, {
      hint: 'remove the url from the box in the Vmfile, or give the box it names another name',
    });
  }
  const found = await findBox(home, ref);
  if (found !== undefined) return found;
  if (ref.url !== undefined) {
    const which = ref.version === undefined ? '' : ` ${ref.version}${options.fromLock === true ? ' (pinned by Vmfile.lock)' : ''}`;
    options.reporter.info(options.machine, `box ${ref.name}${which} is not installed; downloading it from ${redactUrl(ref.url)}`);
    return addBoxFromUrl({
      home,
      reporter: options.reporter,
      name: ref.name,
      url: ref.url,
      requireChecksum: true,
      ...(ref.checksum === undefined ? {} : { checksum: ref.checksum }),
      ...(ref.version === undefined ? {} : { version: ref.version }),
      ...(ref.constraints === undefined ? {} : { constraints: ref.constraints }),
      ...(options.network === undefined ? {} : { network: options.network }),
    });
  }
  const versions = (await listBoxes(home)).filter((box) => box.metadata.name === ref.name).map((box) => box.metadata.version);
  if (ref.constraints !== undefined) {
    throw new UserError(`machine "${options.machine}": no installed version of box ${ref.name} meets ${formatConstraints(ref.constraints)}${versions.length > 0 ? ` (installed: ${versions.join(', ')})` : ''}`, {
      hint: 'add a version that does (vmfile box add), or give the box a url in the Vmfile to download one',
    });
  }
  if (options.fromLock === true && ref.version !== undefined) {
    if (await hasRecipe(ref.name)) {
      const locked = lockedBuild(options.lockEntry, options.snapshotMirror ?? ref.snapshotMirror);
      options.reporter.info(
        options.machine,
        locked === undefined
          ? `box ${ref.name} ${ref.version} (pinned by Vmfile.lock) is not installed; building it from its recipe, then checking it against the lock`
          : `box ${ref.name} ${ref.version} (pinned by Vmfile.lock) is not installed; rebuilding it from the ${locked.packages.length} packages the lock names`,
      );
      return buildBox({ home, name: ref.name, version: ref.version, reporter: options.reporter, ...(locked === undefined ? {} : { locked }) });
    }
    throw new UserError(`machine "${options.machine}": box ${ref.name} version ${ref.version}, pinned by Vmfile.lock, is not installed${versions.length > 0 ? ` (installed: ${versions.join(', ')})` : ''}`, {
      hint: `add that version (vmfile box add ${ref.name} FILE --version ${ref.version}), give the box a url in the Vmfile, or switch to an installed one and record it with: vmfile lock --update`,
    });
  }
  if (ref.version !== undefined && versions.length > 0) {
    throw new UserError(`machine "${options.machine}": box ${ref.name} version ${ref.version} is not installed (installed: ${versions.join(', ')})`, {
      hint: 'change the version in the Vmfile, or add that version with: vmfile box add',
    });
  }
  if (ref.version === undefined && (await hasRecipe(ref.name))) {
    options.reporter.info(options.machine, `box ${ref.name} is not installed; building it from its recipe (about a minute)`);
    return buildBox({ home, name: ref.name, reporter: options.reporter });
  }
  const recipes = await listRecipes();
  throw new UserError(`machine "${options.machine}": unknown box "${ref.name}"`, {
    hint: `add it with "vmfile box add ${ref.name} FILE-OR-URL", give it a url in the Vmfile, or use a box with a recipe: ${recipes.join(', ') || 'none'}`,
  });
}

/** What a lock entry pins for a rebuild from a recipe; undefined for locks written before vmfile recorded the packages. */
export function lockedBuild(entry: LockEntry | undefined, snapshotMirror: string | undefined): LockedBuild | undefined {
  const packages = entry?.recipe?.packages;
  if (entry?.recipe === undefined || packages === undefined) return undefined;
  return {
    packages,
    sha256: entry.sha256,
    recipeHash: entry.recipe.hash,
    ...(entry.kernelSha256 === undefined ? {} : { kernelSha256: entry.kernelSha256 }),
    ...(entry.initrdSha256 === undefined ? {} : { initrdSha256: entry.initrdSha256 }),
    ...(entry.recipe.built === undefined ? {} : { built: entry.recipe.built }),
    ...(snapshotMirror === undefined ? {} : { snapshotMirror }),
  };
}

/** VMFILE_SNAPSHOT_MIRROR, when set: an http(s) URL, or a ConfigError naming the variable. */
export function snapshotMirrorFromEnv(env: NodeJS.ProcessEnv): string | undefined {
  const value = env['VMFILE_SNAPSHOT_MIRROR'];
  if (value === undefined || value === '') return undefined;
  const problem = checkHttpUrl(value);
  if (problem !== undefined) throw new ConfigError(`VMFILE_SNAPSHOT_MIRROR is ${JSON.stringify(redactUrl(value).slice(0, 200))}, which is not ${problem}`, { hint: 'set it to an archive-snapshot mirror laid out as https://snapshot.debian.org is, or unset it' });
  return value;
}

/**
 * Checks `box` against the machine's Vmfile.lock entry (see vmfile/lock.ts): verifies
 * it, writes it on first use, or records it with `update`. A mismatch throws before
 * anything is created or booted; the file is written only when it changes.
 */
export async function checkLock(project: Project, machine: MachineConfig, box: InstalledBox, options: { update: boolean }): Promise<LockOutcome> {
  const settled = settleLock(await readLockFile(project.dir), { machine: machine.name, lockPath: lockFilePath(project.dir) }, await boxFacts(box), options);
  if (settled.outcome !== 'verified') await writeLockFile(project.dir, settled.lock);
  return settled.outcome;
}

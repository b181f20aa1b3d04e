/**
 * The packages of a recipe build, as box/build.ts uses them: the files the build used
 * (copied out of the chroot's apt cache), each with the priority its archive gives it,
 * and, for a rebuild of a locked box, how the result compares with Vmfile.lock: package
 * list first, then the disk, kernel and initrd digests (docs/reproducible.md).
 */
import { readdir, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../exec.js';
import { ConfigError, UserError } from '../errors.js';
import { sha256File } from '../store/digest.js';
import { debLabel, debRefSchema, type DebRef } from '../vmfile/deb-ref.js';
import { archivePriorities, debFileName, debFromControl, packageSetDifference, parseControl } from './debs.js';

/** What a lock entry pins about a box built from a recipe. */
export interface LockedBuild {
  packages: readonly DebRef[];
  sha256: string;
  kernelSha256?: string;
  initrdSha256?: string;
  recipeHash: string;
  /** When the locked box was built: the snapshot mirror is asked for that date. */
  built?: string;
  /** The archive-snapshot mirror (default snapshot.debian.org). */
  snapshotMirror?: string;
}

/**
 * The package files the build used (copied out of the chroot's apt cache), one for each
 * installed package, sorted by name and architecture.
 */
export async function usedDebs(dir: string, installed: readonly string[], label: string): Promise<DebRef[]> {
  const debs: DebRef[] = [];
  for (const file of (await readdir(dir)).filter((name) => name.endsWith('.deb')).sort()) {
    const path = join(dir, file);
    const { stdout } = await run('dpkg-deb', ['-f', path], { purpose: `read the control fields of ${file}` });
    const deb = debFromControl(parseControl(stdout), await sha256File(path));
    if ('problem' in deb) throw new UserError(`${label}: the package file ${file} the build used is not a valid Debian package: ${deb.problem}`);
    // apt names files by its own rules; the store and the local repository use one name.
    if (file !== debFileName(deb)) await rename(path, join(dir, debFileName(deb)));
    debs.push(deb);
  }
  const have = new Set(debs.map((deb) => `${deb.name} ${deb.version}`));
  const without = installed.filter((line) => !have.has(line));
  if (without.length > 0) {
    throw new UserError(`${label}: the build installed ${without.length} package${without.length === 1 ? '' : 's'} whose file it did not keep: ${without.slice(0, 10).join(', ')}`, {
      hint: 'the package set cannot be pinned; report this with the output of vmfile box build',
    });
  }
  const kept = new Set(installed);
  return debs.filter((deb) => kept.has(`${deb.name} ${deb.version}`)).sort((a, b) => (debFileName(a) < debFileName(b) ? -1 : 1));
}

/** The Packages indexes apt downloaded for the build (apt keeps them uncompressed unless told otherwise). */
export async function readIndexes(dir: string): Promise<string[]> {
  const names = (await readdir(dir)).filter((name) => name.endsWith('_Packages'));
  return Promise.all(names.map((name) => readFile(join(dir, name), 'utf8')));
}

/** Each package with the priority its archive gives it (which a rebuild's local index must repeat). */
export function withArchivePriorities(debs: readonly DebRef[], indexes: readonly string[]): DebRef[] {
  const priorities = new Map<string, string>();
  const wanted = new Set(debs.map((deb) => debLabel(deb)));
  for (const index of indexes) archivePriorities(index, wanted, priorities);
  return debs.map((deb) => {
    const priority = debRefSchema.shape.priority.safeParse(priorities.get(debLabel(deb)));
    return priority.success && priority.data !== undefined ? { ...deb, priority: priority.data } : deb;
  });
}

/** How the packages a rebuild installed differ from the locked ones: by name and version, then by file digest. */
export function packageDifferences(locked: readonly DebRef[], installed: readonly string[], used: readonly DebRef[]): string[] {
  const { extra, missing } = packageSetDifference(locked, installed);
  const sentences = [...missing.map((line) => `locked but not installed: ${line}`), ...extra.map((line) => `installed but not locked: ${line}`)];
  const digests = new Set(locked.map((deb) => deb.sha256));
  for (const deb of used) if (!digests.has(deb.sha256)) sentences.push(`installed from a file that is not the locked one: ${deb.name} ${deb.version} (sha256 ${deb.sha256})`);
  return sentences;
}

type Part = 'disk' | 'kernel' | 'initrd';

export function digestDifferences(locked: LockedBuild, built: { sha256: string; kernelSha256: string; initrdSha256: string }): { part: Part; sentence: string }[] {
  const differences: { part: Part; sentence: string }[] = [];
  if (locked.sha256 !== built.sha256) differences.push({ part: 'disk', sentence: `disk sha256: Vmfile.lock has ${locked.sha256}, the rebuilt disk is ${built.sha256}` });
  if (locked.kernelSha256 !== undefined && locked.kernelSha256 !== built.kernelSha256) differences.push({ part: 'kernel', sentence: `kernel sha256: Vmfile.lock has ${locked.kernelSha256}, the rebuilt kernel is ${built.kernelSha256}` });
  if (locked.initrdSha256 !== undefined && locked.initrdSha256 !== built.initrdSha256) differences.push({ part: 'initrd', sentence: `initrd sha256: Vmfile.lock has ${locked.initrdSha256}, the rebuilt initrd is ${built.initrdSha256}` });
  return differences;
}

export function rebuildMismatch(what: string, part: string, sentences: readonly string[]): ConfigError {
  return new ConfigError(`${what} was rebuilt from the locked packages, but its ${part} differs from Vmfile.lock, so it was not installed:\n${sentences.map((line) => `  - ${line}`).join('\n')}`, {
    hint: 'nothing was installed; if a different box is what you want now, build it (vmfile box build) and record it with: vmfile lock --update',
  });
}


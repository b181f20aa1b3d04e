/**
 * `vmfile box build NAME`: a box from a recipe in boxes/NAME, made from Debian's
 * packages with mmdebstrap: root file system in a directory, then an ext4 image made
 * straight from it (mke2fs -d: no loop device, no mount), then qcow2. The kernel and
 * initrd are kept beside the disk for direct kernel boot.
 *
 * Builds aim to be reproducible: a fixed file system UUID and hash seed,
 * SOURCE_DATE_EPOCH for package timestamps, no SSH host keys or machine-id baked in
 * (each machine gets its own at first boot), and the installed package list recorded
 * in box.json as the manifest.
 *
 * Every .deb the build used is kept in the package store (box/deb-store.ts) and named in
 * box.json, with its sha256, so Vmfile.lock can pin the exact package set. A build for a
 * lock (`locked`) installs from exactly those files (box/locked-packages.ts) and must come
 * out with the locked package list and disk, kernel and initrd digests, or nothing is
 * installed and the error names the first part that differs.
 */
import { copyFile, mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../exec.js';
import { ConfigError, UserError } from '../errors.js';
import { convertImage, imageInfo } from '../qemu/img.js';
import { BOX_DISK_FILE, BOX_INITRD_FILE, BOX_KERNEL_FILE, boxDirName, STAGING_RAW_DISK } from '../store/layout.js';
import type { Reporter } from '../ui/reporter.js';
import { inPhase } from '../ui/reporter.js';
import { parseSize } from '../vmfile/size.js';
import { makeRootImage } from './root-image.js';
import { copyRecipeFiles, hasRecipe, listRecipes, readRecipe, recipeHash, recipesDir } from './recipes.js';
import { digestDifferences, packageDifferences, readIndexes, rebuildMismatch, usedDebs, withArchivePriorities, type LockedBuild } from './build-packages.js';

export type { LockedBuild } from './build-packages.js';
import { sha256File } from '../store/digest.js';
import { packagesIn } from './manifest.js';
import { debFileName } from './debs.js';
import { storeDeb } from './deb-store.js';
import { DEFAULT_SNAPSHOT_MIRROR, gatherLockedDebs, networkSources, serveRepository, sourcesListText, writeLocalRepository } from './locked-packages.js';
import { shellQuote } from '../ssh/quote.js';
import { todayVersion } from './import.js';
import type { BoxMetadata } from '../vmfile/box-metadata.js';
import { cleanStaging, installStaged, makeStaging, removeBox, findBox, type InstalledBox } from './store.js';

/** Package timestamps and file system times are clamped to this unless the recipe pins a snapshot. */
const DEFAULT_SOURCE_DATE_EPOCH = 1_700_000_000;

/**
 * What the build's processes (mmdebstrap, package scripts in the chroot) see of the
 * host, fixed: a umask would set the modes of files they create, and a locale or time
 * zone can change what scripts write (sorted lists, dates). Run through a fixed shell
 * prologue, since Node cannot give a child its own umask.
 */
const BUILD_ENV = { LC_ALL: 'C.UTF-8', LANG: 'C.UTF-8', LANGUAGE: '', TZ: 'UTC' };
const WITH_UMASK_022 = ['-c', 'umask 022 && exec "$@"', 'sh'];

/**
 * mmdebstrap runs in a mount namespace of its own, so that the mounts it and the hooks
 * make end with it, even when it is killed. One of them: mkinitramfs builds the initramfs
 * tree in the chroot's /var/tmp and cpio records each directory's link count, which
 * btrfs gives as 1 where ext4, xfs and tmpfs count subdirectories: a tmpfs there gives
 * every build host the same initrd. mke2fs, outside the namespace, sees the tree's own
 * (empty) /var/tmp.
 */
const PRIVATE_MOUNTS = ['--mount', '--propagation', 'private'];
const TMPFS_VAR_TMP = 'mount -t tmpfs -o mode=1777,size=2g vmfile-var-tmp "$1/var/tmp"';

export interface BuildOptions {
  home: string;
  name: string;
  version?: string;
  /** Replace an existing box of the same name and version. */
  force?: boolean;
  reporter: Reporter;
  recipes?: string;
  /** Rebuild what Vmfile.lock pins: from exactly these packages, and only if the result matches. */
  locked?: LockedBuild;
}

export async function buildBox(options: BuildOptions): Promise<InstalledBox> {
  const recipes = options.recipes ?? recipesDir();
  if (!(await hasRecipe(options.name, recipes))) {
    throw new UserError(`no recipe for box ${options.name}`, { hint: `recipes available: ${(await listRecipes(recipes)).join(', ') || 'none'}` });
  }
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new UserError(`building box ${options.name} needs root (mmdebstrap installs packages with their real file owners)`, {
      hint: `run: sudo vmfile box build ${options.name}   (or import a cloud image with: vmfile box add)`,
    });
  }
  const recipe = await readRecipe(options.name, recipes);
  const version = options.version ?? todayVersion();
  const existing = await findBox(options.home, { name: recipe.name, version });
  if (existing !== undefined && options.force !== true) {
    throw new UserError(`box ${recipe.name} version ${version} already exists`, { hint: 'pass --force to rebuild it' });
  }
  const hash = await recipeHash(options.name, recipes);
  const { reporter, locked } = options;
  const label = `box ${recipe.name}`;
  if (locked !== undefined && locked.recipeHash !== hash) {
    throw new ConfigError(`${label} ${version}: Vmfile.lock pins it as built from recipe ${locked.recipeHash}, but this vmfile's recipe for ${recipe.name} is ${hash}, so it cannot be rebuilt here`, {
      hint: 'use the vmfile release that wrote the lock, or move to this recipe on purpose with: vmfile lock --update (after vmfile box build)',
    });
  }
  const epoch = String(DEFAULT_SOURCE_DATE_EPOCH);
  const staging = await makeStaging(options.home, `build-${recipe.name}`);
  let repository: { url: string; close: () => Promise<void> } | undefined;
  try {
    const rootfs = join(staging, 'rootfs');
    const used = join(staging, 'debs');
    const lists = join(staging, 'lists');
    let sources = recipe.sources;
    const finishing: string[] = [];
    if (locked !== undefined) {
      const files = await gatherLockedDebs(locked.packages, {
        home: options.home,
        scratch: staging,
        sources: networkSources(recipe.sources, locked.built, locked.snapshotMirror ?? DEFAULT_SNAPSHOT_MIRROR),
        label: `${label} ${version}`,
        reporter,
      });
      const repo = join(staging, 'repository');
      await writeLocalRepository(repo, recipe.suite, locked.packages, files);
      repository = await serveRepository(repo);
      sources = [`deb [trusted=yes] ${repository.url}/ ./`];
      // The box says where its packages come from, as a build from the mirror would have.
      const list = join(staging, 'sources.list');
      await writeFile(list, sourcesListText(recipe.sources));
      finishing.push(`upload ${shellQuote(list)} /etc/apt/sources.list`, 'chmod 0644 "$1"/etc/apt/sources.list');
    }
    await mkdir(used, { mode: 0o700 });
    await mkdir(lists, { mode: 0o700 });
    const recipeFiles = join(staging, 'recipe-rootfs');
    await copyRecipeFiles(join(recipes, boxDirName(options.name), 'rootfs'), recipeFiles);
    await inPhase(reporter, label, locked === undefined ? `Installing Debian ${recipe.suite} packages with mmdebstrap` : `Installing the ${locked.packages.length} locked packages with mmdebstrap`, (phase) =>
      run(
        'unshare',
        [
          ...PRIVATE_MOUNTS,
          'sh',
          ...WITH_UMASK_022,
          'mmdebstrap',
          `--variant=${recipe.variant}`,
          // The package files stay until the end, where they are copied out (below) and then removed by mmdebstrap's cleanup.
          '--skip=essential/unlink',
          `--include=${recipe.packages.join(',')}`,
          `--essential-hook=${TMPFS_VAR_TMP}`,
          ...recipe.essential.map((hook) => `--essential-hook=${hook}`),
          // The recipe's files go in before the kernel and cloud-init are installed, so the
          // initramfs is built with them (fstab, FSTYPE) and no package overwrites them.
          `--essential-hook=sync-in ${shellQuote(recipeFiles)} /`,
          // apt's indexes, before the recipe removes them: the archive's priorities (below).
          ...(locked === undefined ? [`--customize-hook=sync-out /var/lib/apt/lists ${shellQuote(lists)}`] : []),
          ...recipe.customize.map((hook) => `--customize-hook=${hook}`),
          ...finishing.map((hook) => `--customize-hook=${hook}`),
          `--customize-hook=sync-out /var/cache/apt/archives ${shellQuote(used)}`,
          recipe.suite,
          rootfs,
          ...sources,
        ],
        {
          purpose: `build box ${recipe.name}`,
          env: { ...process.env, ...BUILD_ENV, SOURCE_DATE_EPOCH: epoch } as Record<string, string>,
          onLine: (line) => phase.progress(line.slice(0, 120)),
        },
      ),
    );
    await repository?.close();
    repository = undefined;
    const packages = await packagesIn(join(rootfs, 'var/lib/dpkg'));
    const debs = locked === undefined ? withArchivePriorities(await usedDebs(used, packages, label), await readIndexes(lists)) : await usedDebs(used, packages, label);
    await rm(lists, { recursive: true, force: true });
    if (locked !== undefined) {
      const differences = packageDifferences(locked.packages, packages, debs);
      if (differences.length > 0) throw rebuildMismatch(`${label} ${version}`, 'package list', differences);
    } else {
      await inPhase(reporter, label, `Keeping the ${debs.length} package files in the package store`, async () => {
        for (const deb of debs) {
          const stored = await storeDeb(options.home, join(used, debFileName(deb)), deb, 'build');
          if ('problem' in stored) throw new Error(stored.problem);
        }
      });
    }
    await rm(used, { recursive: true, force: true });
    const boot = await inPhase(reporter, label, 'Making the disk image', async (phase) => {
      const kernel = await onlyMatch(join(rootfs, 'boot'), 'vmlinuz-');
      const initrd = await onlyMatch(join(rootfs, 'boot'), 'initrd.img-');
      await copyFile(kernel, join(staging, BOX_KERNEL_FILE));
      await copyFile(initrd, join(staging, BOX_INITRD_FILE));
      const raw = join(staging, STAGING_RAW_DISK);
      await makeRootImage(rootfs, raw, {
        uuid: recipe.filesystem.uuid,
        hashSeed: recipe.filesystem.hashSeed,
        size: parseSize(recipe.diskSize) ?? 0,
        epoch: DEFAULT_SOURCE_DATE_EPOCH,
        purpose: `make the file system of box ${recipe.name}`,
      });
      await rm(rootfs, { recursive: true, force: true });
      const size = (await stat(raw)).size;
      await convertImage(raw, join(staging, BOX_DISK_FILE), 'qcow2', { sourceFormat: 'raw', purpose: `convert box ${recipe.name} to qcow2`, onProgress: (fraction) => phase.measure(fraction, size) });
      await rm(raw, { force: true });
      return {
        type: 'kernel' as const,
        kernel: BOX_KERNEL_FILE,
        initrd: BOX_INITRD_FILE,
        cmdline: recipe.cmdline,
        kernelSha256: await sha256File(join(staging, BOX_KERNEL_FILE)),
        initrdSha256: await sha256File(join(staging, BOX_INITRD_FILE)),
      };
    });
    const disk = join(staging, BOX_DISK_FILE);
    const diskSha256 = await sha256File(disk);
    if (locked !== undefined) {
      const differences = digestDifferences(locked, { sha256: diskSha256, kernelSha256: boot.kernelSha256, initrdSha256: boot.initrdSha256 });
      if (differences.length > 0) throw rebuildMismatch(`${label} ${version}`, differences[0]?.part ?? 'disk', differences.map((difference) => difference.sentence));
    }
    const now = new Date().toISOString();
    const metadata: BoxMetadata = {
      name: recipe.name,
      version,
      architecture: 'x86_64',
      disk: { file: BOX_DISK_FILE, format: 'qcow2', sha256: diskSha256, virtualSize: (await imageInfo(disk, 'qcow2')).virtualSize },
      boot,
      user: recipe.user,
      created: now,
      source: {
        kind: 'recipe',
        recipe: options.name,
        recipeHash: hash,
        suite: recipe.suite,
        mirror: recipe.sources[0] ?? '',
        packages,
        debs: locked === undefined ? debs : [...locked.packages],
        sourceDateEpoch: DEFAULT_SOURCE_DATE_EPOCH,
        // Without a snapshot pin, the mirror's state at this time decided the package
        // versions; a rebuild for a lock keeps the locked build's date.
        built: locked?.built ?? now,
      },
    };
    if (existing !== undefined) await removeBox(options.home, recipe.name, version);
    return await installStaged(options.home, staging, metadata);
  } catch (error) {
    await repository?.close();
    await cleanStaging(staging);
    throw error;
  }
}

async function onlyMatch(dir: string, prefix: string): Promise<string> {
  const matches = (await readdir(dir)).filter((name) => name.startsWith(prefix));
  if (matches.length !== 1) throw new UserError(`expected one ${prefix}* in ${dir}, found ${matches.length}`);
  return join(dir, matches[0] ?? '');
}


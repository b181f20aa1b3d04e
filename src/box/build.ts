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
 */
import { createHash } from 'node:crypto';
import { copyFile, lstat, lutimes, readdir, readFile, rm, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { z } from 'zod';
import { run } from '../exec.js';
import { ConfigError, UserError } from '../errors.js';
import { convertImage, imageInfo } from '../qemu/img.js';
import { BOX_DISK_FILE, BOX_INITRD_FILE, BOX_KERNEL_FILE, boxDirName, RECIPE_FILE, STAGING_RAW_DISK } from '../store/layout.js';
import type { Reporter } from '../ui/reporter.js';
import { inPhase } from '../ui/reporter.js';
import { parseSize } from '../vmfile/size.js';
import { clampInodeTimes } from './debugfs.js';
import { hasRecipe, listRecipes, recipesDir } from './recipes.js';
import { sha256File } from '../store/digest.js';
import { packagesIn } from './manifest.js';
import { todayVersion } from './import.js';
import { POSIX_USER_PATTERN, type BoxMetadata } from '../vmfile/box-metadata.js';
import { cleanStaging, installStaged, makeStaging, removeBox, findBox, type InstalledBox } from './store.js';

const recipeSchema = z.strictObject({
  name: z.string(),
  description: z.string(),
  suite: z.string(),
  variant: z.enum(['minbase', 'essential', 'apt', 'required', 'important', 'standard']),
  sources: z.array(z.string()).min(1),
  packages: z.array(z.string()),
  /** Shell hooks run after the essential packages, before the rest (see mmdebstrap(1)). */
  essential: z.array(z.string()),
  /** Shell hooks run on the finished tree. */
  customize: z.array(z.string()),
  diskSize: z.string().refine((text) => parseSize(text) !== undefined, { error: 'expected a size like "3GiB"' }),
  user: z.string().regex(POSIX_USER_PATTERN, { error: 'expected a POSIX user name' }),
  cmdline: z.string(),
  filesystem: z.strictObject({ uuid: z.uuid(), hashSeed: z.uuid() }),
});

export type Recipe = z.infer<typeof recipeSchema>;

/** Package timestamps and file system times are clamped to this unless the recipe pins a snapshot. */
const DEFAULT_SOURCE_DATE_EPOCH = 1_700_000_000;

export async function readRecipe(name: string, dir = recipesDir()): Promise<Recipe> {
  const path = join(dir, boxDirName(name), RECIPE_FILE);
  const parsed = recipeSchema.safeParse(JSON.parse(await readFile(path, 'utf8')));
  if (!parsed.success) throw new ConfigError(`recipe ${path} is invalid: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return parsed.data;
}

/** Digest of everything that defines the box: recipe.json and the files it copies in. */
export async function recipeHash(name: string, dir = recipesDir()): Promise<string> {
  const root = join(dir, boxDirName(name));
  const hash = createHash('sha256');
  for (const file of await walk(root)) {
    const info = await stat(file);
    hash.update(`${relative(root, file)}\0${(info.mode & 0o777).toString(8)}\0`);
    hash.update(await readFile(file));
    hash.update('\0');
  }
  return hash.digest('hex');
}

async function walk(dir: string): Promise<string[]> {
  const files: string[] = [];
  for (const entry of (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...(await walk(path)));
    else files.push(path);
  }
  return files;
}

export interface BuildOptions {
  home: string;
  name: string;
  version?: string;
  /** Replace an existing box of the same name and version. */
  force?: boolean;
  reporter: Reporter;
  recipes?: string;
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
  const epoch = String(DEFAULT_SOURCE_DATE_EPOCH);
  const { reporter } = options;
  const label = `box ${recipe.name}`;
  const staging = await makeStaging(options.home, `build-${recipe.name}`);
  try {
    const rootfs = join(staging, 'rootfs');
    await inPhase(reporter, label, `Installing Debian ${recipe.suite} packages with mmdebstrap`, (phase) =>
      run(
        'mmdebstrap',
        [
          `--variant=${recipe.variant}`,
          `--include=${recipe.packages.join(',')}`,
          ...recipe.essential.map((hook) => `--essential-hook=${hook}`),
          // The recipe's files go in before the kernel and cloud-init are installed, so the
          // initramfs is built with them (fstab, FSTYPE) and no package overwrites them.
          `--essential-hook=sync-in ${join(recipes, boxDirName(options.name), 'rootfs')} /`,
          ...recipe.customize.map((hook) => `--customize-hook=${hook}`),
          recipe.suite,
          rootfs,
          ...recipe.sources,
        ],
        {
          purpose: `build box ${recipe.name}`,
          env: { ...process.env, SOURCE_DATE_EPOCH: epoch } as Record<string, string>,
          onLine: (line) => phase.progress(line.slice(0, 120)),
        },
      ),
    );
    const packages = await packagesIn(join(rootfs, 'var/lib/dpkg'));
    const boot = await inPhase(reporter, label, 'Making the disk image', async (phase) => {
      const kernel = await onlyMatch(join(rootfs, 'boot'), 'vmlinuz-');
      const initrd = await onlyMatch(join(rootfs, 'boot'), 'initrd.img-');
      await copyFile(kernel, join(staging, BOX_KERNEL_FILE));
      await copyFile(initrd, join(staging, BOX_INITRD_FILE));
      const raw = join(staging, STAGING_RAW_DISK);
      // Times in the tree record when the build ran; clamp them (mtime only downwards:
      // package files keep their own dates) so the image does not depend on it.
      await clampTreeTimes(rootfs, DEFAULT_SOURCE_DATE_EPOCH);
      await run(
        'mke2fs',
        ['-q', '-t', 'ext4', '-L', 'root', '-U', recipe.filesystem.uuid, '-E', `root_owner=0:0,hash_seed=${recipe.filesystem.hashSeed}`, '-d', rootfs, raw, `${Math.floor((parseSize(recipe.diskSize) ?? 0) / 1024)}k`],
        { purpose: `make the file system of box ${recipe.name}`, env: { ...process.env, E2FSPROGS_FAKE_TIME: epoch } as Record<string, string> },
      );
      await rm(rootfs, { recursive: true, force: true });
      await clampInodeTimes(raw, DEFAULT_SOURCE_DATE_EPOCH);
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
    const metadata: BoxMetadata = {
      name: recipe.name,
      version,
      architecture: 'x86_64',
      disk: { file: BOX_DISK_FILE, format: 'qcow2', sha256: await sha256File(disk), virtualSize: (await imageInfo(disk, 'qcow2')).virtualSize },
      boot,
      user: recipe.user,
      created: new Date().toISOString(),
      source: {
        kind: 'recipe',
        recipe: options.name,
        recipeHash: hash,
        suite: recipe.suite,
        mirror: recipe.sources[0] ?? '',
        packages,
        sourceDateEpoch: DEFAULT_SOURCE_DATE_EPOCH,
        // Without a snapshot pin, the mirror's state at this time decided the package versions.
        built: new Date().toISOString(),
      },
    };
    if (existing !== undefined) await removeBox(options.home, recipe.name, version);
    return await installStaged(options.home, staging, metadata);
  } catch (error) {
    await cleanStaging(staging);
    throw error;
  }
}


/** Sets atime to `epoch` and clamps mtime to at most `epoch` for everything in `dir` (symlinks themselves, not their targets). */
async function clampTreeTimes(dir: string, epoch: number): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      await clampTreeTimes(path, epoch);
      continue;
    }
    const info = await lstat(path);
    await lutimes(path, epoch, Math.min(info.mtimeMs / 1000, epoch));
  }
  // The directory last: changing its children's times does not touch it, but this keeps the order obvious.
  const info = await lstat(dir);
  await lutimes(dir, epoch, Math.min(info.mtimeMs / 1000, epoch));
}

async function onlyMatch(dir: string, prefix: string): Promise<string> {
  const matches = (await readdir(dir)).filter((name) => name.startsWith(prefix));
  if (matches.length !== 1) throw new UserError(`expected one ${prefix}* in ${dir}, found ${matches.length}`);
  return join(dir, matches[0] ?? '');
}


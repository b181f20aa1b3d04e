/**
 * The box recipes vmfile ships (boxes/<name>/recipe.json in the package): what a recipe
 * holds, its hash, its files as they go into a box, and which names recipes take. A box of such a name is only ever built here from its recipe (build.ts),
 * never downloaded or imported: one taken from elsewhere under a higher version would be
 * the newest of that name for every project on the host.
 */
import { createHash } from 'node:crypto';
import { chmod, copyFile, mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { ConfigError, UserError } from '../errors.js';
import { boxDirName, RECIPE_FILE } from '../store/layout.js';
import { POSIX_USER_PATTERN } from '../vmfile/box-metadata.js';
import { parseSize } from '../vmfile/size.js';

export function recipesDir(): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'boxes');
}

export async function hasRecipe(name: string, dir = recipesDir()): Promise<boolean> {
  try {
    await stat(join(dir, boxDirName(name), RECIPE_FILE));
    return true;
  } catch {
    return false;
  }
}

export async function listRecipes(dir = recipesDir()): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  const names: string[] = [];
  for (const entry of entries) if (entry.isDirectory() && (await hasRecipe(entry.name, dir))) names.push(entry.name);
  return names.sort();
}

/** A box from elsewhere (box add, a download) may not take a name a recipe takes. */
export async function refuseRecipeName(name: string): Promise<void> {
  if (!(await hasRecipe(name))) return;
  throw new UserError(`box name ${JSON.stringify(name)} is the name of a box vmfile builds from its own recipe`, {
    hint: `give this box another name; vmup builds ${name} itself (or: vmfile box build ${name})`,
  });
}

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
    hash.update(`${relative(root, file)}\0${checkoutMode(info.mode).toString(8)}\0`);
    hash.update(await readFile(file));
    hash.update('\0');
  }
  return hash.digest('hex');
}

/**
 * A file's mode as git records it: executable or not. The permissions a checkout gets
 * depend on the umask of whoever cloned it; the recipe's hash and the files that go into
 * the box must not.
 */
function checkoutMode(mode: number): number {
  return (mode & 0o111) === 0 ? 0o644 : 0o755;
}

/** The recipe's files copied with their checkout modes (checkoutMode), directories 0755, for sync-in. */
export async function copyRecipeFiles(from: string, to: string): Promise<void> {
  await mkdir(to, { mode: 0o755 });
  await chmod(to, 0o755);
  for (const entry of (await readdir(from, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const source = join(from, entry.name);
    const target = join(to, entry.name);
    if (entry.isDirectory()) await copyRecipeFiles(source, target);
    else if (entry.isFile()) {
      await copyFile(source, target);
      await chmod(target, checkoutMode((await stat(source)).mode));
    } else throw new ConfigError(`recipe file ${source} is not a regular file or directory`);
  }
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

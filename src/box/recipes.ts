/**
 * The box recipes vmfile ships (boxes/<name>/recipe.json in the package): which names
 * they take. A box of such a name is only ever built here from its recipe (build.ts),
 * never downloaded or imported: one taken from elsewhere under a higher version would be
 * the newest of that name for every project on the host.
 */
import { stat, readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../errors.js';
import { boxDirName, RECIPE_FILE } from '../store/layout.js';

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

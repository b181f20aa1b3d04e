/** Box use-cases: find-or-build for vmup, and the `vmfile box` commands. */
import { UserError } from '../errors.js';
import { buildBox, hasRecipe, listRecipes } from '../box/build.js';
import { addBox, type AddBoxOptions } from '../box/import.js';
import { findBox, listBoxes, removeBox, type InstalledBox } from '../box/store.js';
import type { Reporter } from '../ui/reporter.js';
import type { BoxRef } from '../vmfile/config.js';

/** The box a machine needs: from the store, or built from its recipe on first use. */
export async function ensureBox(home: string, ref: BoxRef, options: { reporter: Reporter; machine: string; signal?: AbortSignal }): Promise<InstalledBox> {
  const found = await findBox(home, ref);
  if (found !== undefined) return found;
  const versions = (await listBoxes(home)).filter((box) => box.metadata.name === ref.name).map((box) => box.metadata.version);
  if (ref.version !== undefined && versions.length > 0) {
    throw new UserError(`machine "${options.machine}": box ${ref.name} version ${ref.version} is not installed (installed: ${versions.join(', ')})`, {
      hint: 'change the version in the Vmfile, or add that version with: vmfile box add',
    });
  }
  if (ref.version === undefined && (await hasRecipe(ref.name))) {
    options.reporter.info(options.machine, `box ${ref.name} is not installed; building it from its recipe (about a minute)`);
    return buildBox({ home, name: ref.name, reporter: options.reporter, ...(options.signal === undefined ? {} : { signal: options.signal }) });
  }
  const recipes = await listRecipes();
  throw new UserError(`machine "${options.machine}": unknown box "${ref.name}"`, {
    hint: `add it with "vmfile box add ${ref.name} FILE", or use a box with a recipe: ${recipes.join(', ') || 'none'}`,
  });
}

export { addBox, buildBox, listBoxes, removeBox, type AddBoxOptions };

/** Box use-cases: find-or-build for vmup, and the `vmfile box` commands. */
import { UserError } from '../errors.js';
import { buildBox, hasRecipe, listRecipes } from '../box/build.js';
import { addBox, type AddBoxOptions } from '../box/import.js';
import { findBox, listBoxes, removeBox, type InstalledBox } from '../box/store.js';
import type { Reporter } from '../ui/reporter.js';
import type { BoxRef } from '../vmfile/config.js';

/**
 * The box a machine needs: from the store, or built from its recipe on first use.
 * `fromLock` says the version came from Vmfile.lock rather than the Vmfile: a locked
 * version that is not installed is built from the recipe under that version (another
 * host, same lock), and the lock check that follows says whether it came out the same.
 */
export async function ensureBox(
  home: string,
  ref: BoxRef,
  options: { reporter: Reporter; machine: string; signal?: AbortSignal; fromLock?: boolean },
): Promise<InstalledBox> {
  const found = await findBox(home, ref);
  if (found !== undefined) return found;
  const versions = (await listBoxes(home)).filter((box) => box.metadata.name === ref.name).map((box) => box.metadata.version);
  if (options.fromLock === true && ref.version !== undefined) {
    if (await hasRecipe(ref.name)) {
      options.reporter.info(options.machine, `box ${ref.name} ${ref.version} (pinned by Vmfile.lock) is not installed; building it from its recipe, then checking it against the lock`);
      return buildBox({ home, name: ref.name, version: ref.version, reporter: options.reporter, ...(options.signal === undefined ? {} : { signal: options.signal }) });
    }
    throw new UserError(`machine "${options.machine}": box ${ref.name} version ${ref.version}, pinned by Vmfile.lock, is not installed${versions.length > 0 ? ` (installed: ${versions.join(', ')})` : ''}`, {
      hint: `add that version (vmfile box add ${ref.name} FILE --version ${ref.version}), or switch to an installed one and record it with: vmfile lock --update`,
    });
  }
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

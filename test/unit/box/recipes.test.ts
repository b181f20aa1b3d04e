import { describe, expect, test } from 'vitest';
import { readRecipe, recipeHash } from '../../../src/box/recipes.js';
import { listRecipes } from '../../../src/box/recipes.js';

describe('the recipes shipped in boxes/', () => {
  test('debian-11, debian-12 and debian-13 are there and valid', async () => {
    expect(await listRecipes()).toEqual(expect.arrayContaining(['debian-11', 'debian-12', 'debian-13']));
    for (const name of await listRecipes()) expect((await readRecipe(name)).name).toBe(name);
  });

  test('the Debian releases differ only in their release, never in what makes a box reproducible', async () => {
    const [bullseye, bookworm, trixie] = await Promise.all(['debian-11', 'debian-12', 'debian-13'].map((name) => readRecipe(name)));
    const shape = (recipe: Awaited<ReturnType<typeof readRecipe>>) => {
      const { name: _name, description: _description, suite, sources, filesystem: _filesystem, packages, customize, ...rest } = recipe;
      // trixie's ifupdown recommends dhcpcd; bookworm and bullseye use ISC's client.
      const dhcp = packages.map((name) => (name === 'dhcpcd-base' ? 'isc-dhcp-client' : name));
      // bookworm runs cloud-init's config modules in its network stage (its 90-vmfile.cfg);
      // trixie's cloud-init runs every stage in one process already.
      // bullseye's Python 3.9 writes .pyc files that differ from build to build when compiled
      // in parallel, as Debian does: its recipe compiles them again in one process.
      const steps = customize.filter((step) => !step.includes('systemctl mask cloud-config.service') && !step.includes('py_compile.compile'));
      return { ...rest, customize: steps, packages: dhcp, sources: sources.map((line) => line.replaceAll(suite, 'SUITE')) };
    };
    // bullseye is past its LTS end: its security suite is gone, the rest is the same.
    const withoutSecurity = (recipe: Awaited<ReturnType<typeof readRecipe>>) => ({ ...shape(recipe), sources: shape(recipe).sources.filter((line) => !line.includes('security')) });
    expect(shape(bullseye!)).toEqual(withoutSecurity(bookworm!));
    expect(bullseye!.customize.filter((step) => step.includes('py_compile.compile'))).toHaveLength(1);
    expect(shape(trixie!)).toEqual(shape(bookworm!));
    expect([bullseye!.suite, bookworm!.suite, trixie!.suite]).toEqual(['bullseye', 'bookworm', 'trixie']);
    // Each has its own fixed file system UUID and hash seed, so builds repeat but boxes never share one.
    const ids = [bullseye!, bookworm!, trixie!].flatMap((recipe) => [recipe.filesystem.uuid, recipe.filesystem.hashSeed]);
    expect(new Set(ids).size).toBe(6);
    // Their hashes (what a Vmfile.lock records) differ.
    const hashes = await Promise.all(['debian-11', 'debian-12', 'debian-13'].map((name) => recipeHash(name)));
    expect(new Set(hashes).size).toBe(3);
  });
});

/**
 * Vmfile.lock's shape and text (what it means is vmfile/lock.ts). The file is JSON with a
 * fixed key order and machines sorted by name, ending in a newline, so that it diffs well
 * in version control and rewriting it unchanged is a no-op; a box's packages are one per
 * line. It is text from a repository: every field is checked when it is read.
 */
import { z } from 'zod';
import { ConfigError } from '../errors.js';
import { BOX_NAME_PATTERN, BOX_NAME_RULE, BOX_VERSION_PATTERN } from './box-metadata.js';
import { CHECKSUM_PATTERN, httpUrlSchema } from './box-source.js';
import { formatIssues } from './config.js';
import { DEB_LABEL, debRefSchema, type DebRef } from './deb-ref.js';

const SHA256 = /^[0-9a-f]{64}$/;

const recipeSchema = z.strictObject({
  name: z.string(),
  hash: z.string().regex(SHA256),
  suite: z.string(),
  /** Absent for boxes built before vmfile recorded them. */
  sourceDateEpoch: z.number().int().optional(),
  snapshot: z.string().optional(),
  built: z.string().optional(),
  /** Every .deb the box was built from, with its sha256: a rebuild installs exactly these. Absent for boxes built before vmfile recorded them. */
  packages: z.array(debRefSchema).max(100_000).optional(),
});

/** A step's declared outputs as last hashed in the guest: guest path -> sha256. */
const outputsSchema = z.record(z.string().min(1).max(64), z.record(z.string().startsWith('/').max(4096), z.string().regex(SHA256, { error: 'expected 64 lower-case hex digits' })));

/**
 * What each provisioning step installed, by step name: every Debian package it added or
 * changed, with its .deb's sha256 (provision/step-packages.ts), and those it could not pin.
 */
const stepsSchema = z.record(
  z.string().min(1).max(64),
  z.strictObject({
    packages: z.array(debRefSchema).max(100_000),
    /** A "name version architecture" the step installed and vmfile could not pin (no .deb to be had). */
    unpinned: z.array(z.string().regex(DEB_LABEL, { error: 'expected "name version architecture"' })).max(100_000).optional(),
  }),
);

const entrySchema = z.strictObject({
  // Checked when the file is read: a version becomes a directory name, and a lock is text from a repository.
  box: z.string().regex(BOX_NAME_PATTERN, { error: `expected a box name: ${BOX_NAME_RULE}` }),
  version: z.string().regex(BOX_VERSION_PATTERN, { error: 'expected a box version: letters, digits, ".", "_", "+" and "-", at most 64 characters, starting with a letter or digit' }),
  sha256: z.string().regex(SHA256, { error: 'expected 64 lower-case hex digits' }),
  /** The kernel's and initrd's sha256, for a box that boots a kernel; absent in locks written before they were recorded. */
  kernelSha256: z.string().regex(SHA256, { error: 'expected 64 lower-case hex digits' }).optional(),
  initrdSha256: z.string().regex(SHA256, { error: 'expected 64 lower-case hex digits' }).optional(),
  /** Where the box came from: built from a recipe, imported, or packaged from a machine. */
  source: z.enum(['recipe', 'import', 'package']),
  recipe: recipeSchema.optional(),
  /**
   * Where the box was downloaded from (absent for a box built or imported from a file),
   * for people reading the lock: vmup never downloads from it (see lockedBoxRef). Optional,
   * so lock files written before vmfile downloaded boxes still read as lockVersion 1.
   */
  url: httpUrlSchema.optional(),
  catalog: httpUrlSchema.optional(),
  checksum: z.string().regex(CHECKSUM_PATTERN, { error: 'expected sha256:HEX, sha384:HEX or sha512:HEX' }).optional(),
  /** The digests of each provisioning step's declared outputs, by step name, from the last run (provision/outputs.ts). */
  outputs: outputsSchema.optional(),
  /** The packages each provisioning step installed: a vmup from this lock gives the guest exactly these (provision/pinned-source.ts). */
  steps: stepsSchema.optional(),
});

export const lockFileSchema = z.strictObject({
  lockVersion: z.literal(1, { error: 'this Vmfile.lock was written by a newer vmfile (lockVersion is not 1)' }),
  machines: z.record(z.string(), entrySchema),
});

export type LockEntry = z.infer<typeof entrySchema>;
export type LockFile = z.infer<typeof lockFileSchema>;

type RecipeEntry = NonNullable<LockEntry['recipe']>;

/** Keys in their fixed order, absent ones left out. */
export function orderedRecipe(recipe: { [K in keyof RecipeEntry]: RecipeEntry[K] | undefined } & Pick<RecipeEntry, 'name' | 'hash' | 'suite'>): RecipeEntry {
  return {
    name: recipe.name,
    hash: recipe.hash,
    suite: recipe.suite,
    ...(recipe.sourceDateEpoch === undefined ? {} : { sourceDateEpoch: recipe.sourceDateEpoch }),
    ...(recipe.snapshot === undefined ? {} : { snapshot: recipe.snapshot }),
    ...(recipe.built === undefined ? {} : { built: recipe.built }),
    ...(recipe.packages === undefined ? {} : { packages: recipe.packages.map(orderedDeb) }),
  };
}

function orderedDeb(deb: DebRef): DebRef {
  return {
    name: deb.name,
    version: deb.version,
    architecture: deb.architecture,
    ...(deb.source === undefined ? {} : { source: deb.source }),
    ...(deb.priority === undefined ? {} : { priority: deb.priority }),
    sha256: deb.sha256,
  };
}

export function parseLockFile(text: string, path: string): LockFile {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`${path} is not valid JSON: ${error instanceof Error ? error.message : String(error)}`, {
      hint: 'restore it from version control, or delete it and run vmfile lock --update',
    });
  }
  const parsed = lockFileSchema.safeParse(value);
  if (!parsed.success) {
    throw new ConfigError(`${path} is invalid:\n${formatIssues(parsed.error.issues).map((line) => `  - ${line}`).join('\n')}`, {
      hint: 'restore it from version control, or delete it and run vmfile lock --update',
    });
  }
  return parsed.data;
}

/** The file's text: fixed key order, machines sorted, two-space indent, final newline. */
export function formatLockFile(lock: LockFile): string {
  const machines: Record<string, LockEntry> = {};
  for (const name of Object.keys(lock.machines).sort()) {
    const entry = lock.machines[name];
    if (entry !== undefined) machines[name] = orderedEntry(entry);
  }
  // One package per line: a lock pins hundreds, and a point release should diff as the lines it changes.
  const packages: string[] = [];
  const withPlaceholders = JSON.stringify({ lockVersion: 1, machines }, (key, value: unknown) => {
    if (key !== 'packages' || !Array.isArray(value)) return value;
    return value.map((deb) => `\u0000${packages.push(JSON.stringify(deb)) - 1}`);
  }, 2);
  return `${withPlaceholders.replace(/"\\u0000(\d+)"/g, (_match, index: string) => packages[Number(index)] ?? '')}\n`;
}

export function orderedEntry(entry: LockEntry): LockEntry {
  const ordered: LockEntry = {
    box: entry.box,
    version: entry.version,
    sha256: entry.sha256,
    ...(entry.kernelSha256 === undefined ? {} : { kernelSha256: entry.kernelSha256 }),
    ...(entry.initrdSha256 === undefined ? {} : { initrdSha256: entry.initrdSha256 }),
    source: entry.source,
  };
  if (entry.recipe !== undefined) ordered.recipe = orderedRecipe(entry.recipe);
  if (entry.url !== undefined) ordered.url = entry.url;
  if (entry.catalog !== undefined) ordered.catalog = entry.catalog;
  if (entry.checksum !== undefined) ordered.checksum = entry.checksum;
  if (entry.outputs !== undefined) ordered.outputs = sortedOutputs(entry.outputs);
  if (entry.steps !== undefined) ordered.steps = sortedSteps(entry.steps);
  return ordered;
}

function sortedOutputs(outputs: NonNullable<LockEntry['outputs']>): NonNullable<LockEntry['outputs']> {
  const sorted = (record: Record<string, string>) => Object.fromEntries(Object.keys(record).sort().map((key) => [key, record[key] ?? '']));
  return Object.fromEntries(Object.keys(outputs).sort().map((step) => [step, sorted(outputs[step] ?? {})]));
}

type StepsEntry = NonNullable<LockEntry['steps']>;

function sortedSteps(steps: StepsEntry): StepsEntry {
  const byFile = (a: DebRef, b: DebRef) => (`${a.name} ${a.architecture}` < `${b.name} ${b.architecture}` ? -1 : 1);
  return Object.fromEntries(
    Object.keys(steps)
      .sort()
      .map((step) => {
        const { packages = [], unpinned } = steps[step] ?? {};
        return [step, { packages: [...packages].sort(byFile).map(orderedDeb), ...(unpinned === undefined || unpinned.length === 0 ? {} : { unpinned: [...unpinned].sort() }) }];
      }),
  );
}

/**
 * The cloud-init NoCloud seed: rendered from templates/*.hbs (pure), then written to
 * the directory QEMU serves read-only as the "cidata" drive.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type Handlebars from 'handlebars';
import { InternalError } from '../errors.js';

export interface SeedData {
  machine: string;
  instanceId: string;
  hostname: string;
  user: string;
  authorizedKey: string;
  hostPrivateKey: string;
  hostPublicKey: string;
}

export const SEED_FILES = ['meta-data', 'user-data'] as const;
export type SeedFiles = Record<(typeof SEED_FILES)[number], string>;

export function templatesDir(): string {
  // Same relative place from src/cloudinit and dist/cloudinit.
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'templates');
}

/** The seed's templates, with Handlebars (loaded with them: commands that render nothing never load it). */
export interface SeedTemplates {
  files: SeedFiles;
  engine: typeof Handlebars;
}

export async function loadSeedTemplates(dir = templatesDir()): Promise<SeedTemplates> {
  const entries = await Promise.all(SEED_FILES.map(async (name) => [name, await readFile(join(dir, `${name}.hbs`), 'utf8')] as const));
  return { files: Object.fromEntries(entries) as SeedFiles, engine: (await import('handlebars')).default };
}

/** Renders each template in strict mode: a missing value is an error, not an empty string. */
export function renderSeed(templates: SeedTemplates, data: SeedData): SeedFiles {
  const { engine, files } = templates;
  const handlebars = engine.create();
  // JSON strings are valid YAML scalars, so any value is quoted and escaped correctly.
  // Strict mode does not check helper arguments, so the helper itself refuses a missing value.
  handlebars.registerHelper('json', (value: unknown, options: { loc?: { start?: { line?: number } } }) => {
    if (value === undefined) throw new InternalError(`seed template refers to a value that is not set (line ${options.loc?.start?.line ?? '?'})`);
    return new engine.SafeString(JSON.stringify(value));
  });
  const render = (source: string): string => handlebars.compile(source, { strict: true, noEscape: true })(data);
  return { 'meta-data': render(files['meta-data']), 'user-data': render(files['user-data']) };
}

export async function writeSeed(dir: string, files: SeedFiles): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true, mode: 0o700 });
  for (const name of SEED_FILES) await writeFile(join(dir, name), files[name], { mode: 0o600 });
}

/**
 * Finds and loads a Vmfile.ts at run time, with no build step for the user. jiti
 * transpiles it in process; `import ... from 'vmfile'` is aliased to this running
 * copy of vmfile, so a Vmfile works wherever it lives, with or without vmfile in
 * its own node_modules.
 */
import { realpath, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createJiti } from 'jiti';
import { ConfigError } from '../errors.js';
import { VMFILE_NAMES } from '../store/layout.js';
import { parseVmfile, type Project } from '../vmfile/config.js';
import { pathExists } from '../store/exists.js';

export interface LoadOptions {
  cwd: string;
  /** Explicit path from --vmfile. */
  vmfile?: string;
}

/** The Vmfile named explicitly, else the first one in cwd or a parent directory. */
export async function findVmfile(options: LoadOptions): Promise<string> {
  if (options.vmfile !== undefined) {
    const path = resolve(options.cwd, options.vmfile);
    if (!(await pathExists(path))) throw new ConfigError(`Vmfile not found: ${path}`, { hint: 'check the --vmfile path' });
    return checkedFile(path);
  }
  let dir = resolve(options.cwd);
  for (;;) {
    for (const name of VMFILE_NAMES) {
      const candidate = join(dir, name);
      if (await pathExists(candidate)) return checkedFile(candidate);
    }
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  throw new ConfigError(`no Vmfile.ts in ${options.cwd} or any parent directory`, {
    hint: 'create one (see Vmfile.example.ts in the vmfile package) or pass --vmfile PATH',
  });
}

async function checkedFile(path: string): Promise<string> {
  const info = await stat(path);
  if (!info.isFile()) throw new ConfigError(`${path} is not a file (it is a ${info.isDirectory() ? 'directory' : 'special file'})`, { hint: 'a Vmfile is a TypeScript file: Vmfile.ts' });
  return path;
}

/** A Vmfile is code from a repository: it gets this long to load. */
const LOAD_TIMEOUT_MS = 10_000;

export async function loadProject(options: LoadOptions & { timeoutMs?: number }): Promise<Project> {
  const vmfilePath = await findVmfile(options);
  const { value, loaded } = await importVmfile(vmfilePath, options.timeoutMs ?? LOAD_TIMEOUT_MS);
  const loadedFiles = await Promise.all([vmfilePath, ...loaded].map((file) => realpath(file).catch(() => file)));
  return { ...parseVmfile(value, vmfilePath, dirname(vmfilePath)), loadedFiles: [...new Set(loadedFiles)] };
}

/** vmfile's own files (dist/ or src/, and its dependencies): what the loader brings, not the project. */
const VMFILE_OWN = ['dist', 'src', 'node_modules'].map((dir) => join(fileURLToPath(import.meta.url), '..', '..', '..', dir));

/**
 * Which files a load ran. jiti keeps every module it evaluates in Node's CommonJS cache
 * when its moduleCache is on (documented); the new entries are the files, and are then
 * removed, so the next load reads them again as with moduleCache off. ESM that Node
 * imports natively (.mjs, .js of a "type": "module" package) is not in that cache.
 */
function loadedModules(): { files: () => string[] } {
  const cache = createRequire(import.meta.url).cache;
  const before = new Set(Object.keys(cache));
  return {
    files: () => {
      const added = Object.keys(cache).filter((file) => !before.has(file) && VMFILE_OWN.every((own) => relative(own, file).startsWith('..')));
      for (const file of added) delete cache[file];
      return added;
    },
  };
}

/**
 * Runs the Vmfile and returns its default export as plain data. Whatever the code does
 * (throws, rejects, never finishes, calls process.exit, has getters that throw) ends as
 * a ConfigError naming the file, never as vmfile's own failure or silence.
 */
async function importVmfile(path: string, timeoutMs: number): Promise<{ value: unknown; loaded: string[] }> {
  // Resolves to dist/index.js when built and src/index.ts under the test runner.
  const entry = join(dirname(fileURLToPath(import.meta.url)), '..', 'index');
  const modules = loadedModules();
  const jiti = createJiti(import.meta.url, { alias: { vmfile: entry }, moduleCache: true, interopDefault: false });
  const hint = 'fix the TypeScript error above; the Vmfile must `export default defineVm({...})`';
  const exit = process.exit;
  // A Vmfile that calls process.exit would end vmfile with its own code and no word.
  process.exit = ((code?: number | string | null) => {
    throw new ConfigError(`${path} called process.exit(${code ?? ''}) while loading`, { hint: 'a Vmfile only describes machines; remove the call' });
  }) as typeof process.exit;
  let timer: NodeJS.Timeout | undefined;
  try {
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new ConfigError(`${path} did not finish loading within ${timeoutMs / 1000} s`, { hint: 'a Vmfile must not wait for anything: no network, no endless loops' })), timeoutMs);
    });
    const module: unknown = await Promise.race([jiti.import(path), deadline]);
    if (typeof module !== 'object' || module === null || !('default' in module) || module.default === undefined) {
      throw new ConfigError(`${path} has no default export`, { hint: 'end it with: export default defineVm({ box: "debian-12", ... })' });
    }
    // A default export may be a promise (export default loadConfig()); then its value counts.
    const value: unknown = await Promise.race([module.default, deadline]);
    return { value: plainData(value, path), loaded: modules.files() };
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(`${path} could not be loaded: ${firstLine(error)}`, { hint, cause: error });
  } finally {
    modules.files();
    clearTimeout(timer);
    process.exit = exit;
  }
}

/** A copy made of data only: getters run once here (and may throw here), functions and classes are refused. */
function plainData(value: unknown, path: string): unknown {
  try {
    return structuredClone(value);
  } catch (error) {
    throw new ConfigError(`${path}: its default export is not plain data (${firstLine(error)})`, {
      hint: 'export an object of strings, numbers, booleans, arrays and objects: defineVm({...})',
      cause: error,
    });
  }
}

function firstLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split('\n').slice(0, 6).join('\n');
}

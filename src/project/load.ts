/**
 * Finds and loads a Vmfile.ts at run time, with no build step for the user. jiti
 * transpiles it in process; `import ... from 'vmfile'` is aliased to this running
 * copy of vmfile, so a Vmfile works wherever it lives, with or without vmfile in
 * its own node_modules.
 */
import { dirname, join, resolve } from 'node:path';
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
    return path;
  }
  let dir = resolve(options.cwd);
  for (;;) {
    for (const name of VMFILE_NAMES) {
      const candidate = join(dir, name);
      if (await pathExists(candidate)) return candidate;
    }
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  throw new ConfigError(`no Vmfile.ts in ${options.cwd} or any parent directory`, {
    hint: 'create one (see Vmfile.example.ts in the vmfile package) or pass --vmfile PATH',
  });
}

export async function loadProject(options: LoadOptions): Promise<Project> {
  const vmfilePath = await findVmfile(options);
  const value = await importVmfile(vmfilePath);
  return parseVmfile(value, vmfilePath, dirname(vmfilePath));
}

async function importVmfile(path: string): Promise<unknown> {
  // Resolves to dist/index.js when built and src/index.ts under the test runner.
  const entry = join(dirname(fileURLToPath(import.meta.url)), '..', 'index');
  const jiti = createJiti(import.meta.url, { alias: { vmfile: entry }, moduleCache: false, interopDefault: false });
  let module: unknown;
  try {
    module = await jiti.import(path);
  } catch (error) {
    throw new ConfigError(`${path} could not be loaded: ${firstLine(error)}`, {
      hint: 'fix the TypeScript error above; the Vmfile must `export default defineVm({...})`',
      cause: error,
    });
  }
  if (typeof module !== 'object' || module === null || !('default' in module) || module.default === undefined) {
    throw new ConfigError(`${path} has no default export`, { hint: 'end it with: export default defineVm({ box: "debian-12", ... })' });
  }
  return module.default;
}

function firstLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split('\n').slice(0, 6).join('\n');
}

/**
 * The types an editor (and `tsc --noEmit`) needs to check a Vmfile, in a project that has
 * no node_modules and never runs npm.
 *
 * How: the project's `tsconfig.json` (written by `vmfile init` where there is none) holds
 * one line, `"extends": "./.vmfile/tsconfig.json"`. That file is vmfile's, per host and
 * never committed (`.vmfile/` is ignored), and vmfile rewrites it whenever it differs from
 * what this copy of vmfile would write: on `vmfile init`, `vmfile validate` and `vmup`. It
 * maps `import ... from 'vmfile'` to the declarations of the vmfile that runs (its
 * `dist/index.d.ts`, which reach zod's through vmfile's own node_modules), and Node's
 * globals (`process.env`) to the @types/node that vmfile depends on. So it holds however
 * vmfile was installed (`npm install -g`, `npm link`, a checkout), and an upgrade or a
 * move of vmfile is picked up by the next command, as SvelteKit and Nuxt do with their
 * generated tsconfig. A colleague's fresh clone has the types after its first vmfile
 * command. Absolute paths are fine here because the file never leaves this host.
 */
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic } from '../store/json.js';
import { ensureProjectStateDir } from '../store/project-state.js';

/** What the project's tsconfig.json says to pick up vmfile's settings. */
export const PROJECT_TSCONFIG_EXTENDS = './.vmfile/tsconfig.json';

export interface EditorTypesSource {
  /** vmfile's declarations: dist/index.d.ts of the running copy. */
  declarations: string;
  /** The directory holding @types/node, or undefined when vmfile was installed without it. */
  typeRoot: string | undefined;
}

/** Where the running vmfile's declarations and Node's types are. */
export function editorTypesSource(): EditorTypesSource {
  const here = dirname(fileURLToPath(import.meta.url));
  let typeRoot: string | undefined;
  try {
    // @types/node/package.json → the @types directory that holds it.
    typeRoot = dirname(dirname(createRequire(import.meta.url).resolve('@types/node/package.json')));
  } catch {
    typeRoot = undefined;
  }
  // dist/project/editor-types.js → dist/index.d.ts (under the test runner, src/index.ts).
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.d.ts';
  return { declarations: join(here, '..', `index${ext}`), typeRoot };
}

/** The text of .vmfile/tsconfig.json for a Vmfile with this file name. Pure. */
export function editorTsconfig(vmfileName: string, source: EditorTypesSource): string {
  const include = [...new Set(['../Vmfile.ts', `../${vmfileName}`])];
  const config = {
    '//': 'Written by vmfile on each vmfile init, validate and vmup; edits are lost. Your tsconfig.json extends it.',
    compilerOptions: {
      target: 'ES2022',
      module: 'ESNext',
      moduleResolution: 'Bundler',
      lib: ['ES2022'],
      strict: true,
      noEmit: true,
      allowImportingTsExtensions: true,
      skipLibCheck: true,
      ...(source.typeRoot === undefined ? { types: [] } : { typeRoots: [source.typeRoot], types: ['node'] }),
      paths: { vmfile: [source.declarations] },
    },
    include,
  };
  return `${JSON.stringify(config, null, 2)}\n`;
}

/**
 * Writes .vmfile/tsconfig.json for the project of this Vmfile, when it differs (in a
 * .vmfile/ that is a real directory: store/project-state.ts).
 */
export async function writeEditorTsconfig(vmfilePath: string, source: EditorTypesSource = editorTypesSource()): Promise<void> {
  const stateDir = await ensureProjectStateDir(dirname(vmfilePath));
  await writeFileAtomic(join(stateDir, 'tsconfig.json'), editorTsconfig(basename(vmfilePath), source), { mode: 0o644, skipUnchanged: true });
}

/** The project tsconfig.json `vmfile init` writes where there is none. */
export function projectTsconfig(): string {
  return [
    '// Lets your editor and `tsc --noEmit` check Vmfile.ts. The settings and the paths to',
    "// vmfile's types are in .vmfile/tsconfig.json, which vmfile init, vmfile validate and",
    '// vmup write on this host (after a fresh clone, run one of them once).',
    '{',
    `  "extends": "${PROJECT_TSCONFIG_EXTENDS}"`,
    '}',
    '',
  ].join('\n');
}

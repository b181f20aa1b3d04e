/**
 * vmfile init: a first, commented Vmfile.ts in a directory, and `.vmfile/` (machine
 * state and private keys) in its .gitignore. An existing Vmfile is never overwritten:
 * the file is created exclusively, so even a race cannot replace one. What the directory
 * holds is the user's: one that cannot be written is a UserError, and a .gitignore that
 * is not a file a ConfigError found before anything is written. A tsconfig.json that
 * lets editors check the Vmfile without node_modules is written where there is none
 * (project/editor-types.ts).
 *
 * With `from`, the Vmfile is a Vagrantfile's, converted (src/vagrant/): Ruby runs the
 * Vagrantfile with a recorder of its configuration calls, and every setting that did not
 * convert is a comment in the Vmfile and a line of `gaps`.
 */
import { readFile, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import Handlebars from 'handlebars';
import { templatesDir } from '../cloudinit/seed.js';
import { PROJECT_TSCONFIG_EXTENDS, projectTsconfig, writeEditorTsconfig } from '../project/editor-types.js';
import { ConfigError, UserError } from '../errors.js';
import { readRegularFile, UnreadableFileError } from '../store/regular-file.js';
import { convertRecord } from '../vagrant/convert.js';
import { vmfileSource } from '../vagrant/emit.js';
import { recordVagrantfile } from '../vagrant/recorder.js';
import { summarize, type Gap } from '../vagrant/report.js';
import { BOX_NAME_PATTERN, BOX_NAME_RULE } from '../vmfile/box-metadata.js';

export interface InitResult {
  vmfile: string;
  /** What was done to .gitignore. */
  gitignore: 'created' | 'added' | 'already there';
  /** With `from`: what did not convert, or converted with a difference, and the summary of it. */
  conversion?: { gaps: Gap[]; summary: string; machines: string[] };
  /** The project's tsconfig.json: written; there already and extending vmfile's; or the project's own, left as it is. */
  tsconfig: 'created' | 'already there' | 'kept';
}

export interface InitOptions {
  dir: string;
  box?: string;
  /** A Vagrantfile to convert. */
  from?: string;
  /** The environment the Vagrantfile runs in (it reads it), and VAGRANT_SERVER_URL. */
  env?: NodeJS.ProcessEnv;
}

/** Vagrant's box catalog server, where a box named org/name is looked up. */
const VAGRANT_SERVER = 'https://vagrantcloud.com';

export async function init(options: InitOptions): Promise<InitResult> {
  if (options.from !== undefined && options.box !== undefined) throw new ConfigError('--box and --from: give one (a converted Vagrantfile names its own box)');
  const box = options.box ?? 'debian-12';
  if (!BOX_NAME_PATTERN.test(box)) {
    throw new ConfigError(`--box: "${box}" is not a box name (${BOX_NAME_RULE})`, { hint: 'see installed boxes with: vmfile box list' });
  }
  const vmfile = join(options.dir, 'Vmfile.ts');
  const gitignore = join(options.dir, '.gitignore');
  const ignored = await readGitignore(gitignore);
  let text: string;
  let conversion: InitResult['conversion'];
  if (options.from === undefined) {
    const template = Handlebars.compile(await readFile(join(templatesDir(), 'Vmfile.ts.hbs'), 'utf8'), { noEscape: true, strict: true });
    text = template({ box });
  } else {
    await refuseExisting(vmfile);
    ({ text, conversion } = await convertVagrantfile(resolve(options.dir, options.from), options.dir, options.env ?? {}));
  }
  try {
    await writeFile(vmfile, text, { flag: 'wx', mode: 0o644 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new UserError(`${vmfile} already exists; vmfile init does not overwrite it`, { hint: 'edit it, or remove it first to start again' });
    }
    throw cannotWrite(vmfile, error);
  }
  const result = { vmfile, gitignore: await ignoreStateDir(gitignore, ignored) };
  await writeEditorTsconfig(vmfile).catch((error: unknown) => {
    throw error instanceof ConfigError ? error : cannotWrite(join(options.dir, '.vmfile', 'tsconfig.json'), error);
  });
  return { ...result, tsconfig: await writeProjectTsconfig(join(options.dir, 'tsconfig.json')), ...(conversion === undefined ? {} : { conversion }) };
}

/** A tsconfig.json that lets editors check the Vmfile, unless the project has its own. */
async function writeProjectTsconfig(path: string): Promise<InitResult['tsconfig']> {
  try {
    await writeFile(path, projectTsconfig(), { flag: 'wx', mode: 0o644 });
    return 'created';
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw cannotWrite(path, error);
    const text = await readRegularFile(path, 1 << 20).catch(() => '');
    return text.includes(PROJECT_TSCONFIG_EXTENDS.slice(2)) ? 'already there' : 'kept';
  }
}

/** Checked before the Vagrantfile runs, so that its code does not run for nothing (the write is still exclusive). */
async function refuseExisting(vmfile: string): Promise<void> {
  if ((await stat(vmfile).catch(() => undefined)) !== undefined) {
    throw new UserError(`${vmfile} already exists; vmfile init does not overwrite it`, { hint: 'edit it, or remove it first to start again' });
  }
}

async function convertVagrantfile(path: string, dir: string, env: NodeJS.ProcessEnv): Promise<{ text: string; conversion: NonNullable<InitResult['conversion']> }> {
  const info = await stat(path).catch((error: unknown) => {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ConfigError(`--from ${path}: ${code === 'ENOENT' ? 'no such file' : `cannot be read (${(error as Error).message})`}`, { hint: 'give the path of a Vagrantfile' });
  });
  if (!info.isFile()) throw new ConfigError(`--from ${path}: not a file`, { hint: 'give the path of a Vagrantfile (not its directory)' });
  const record = await recordVagrantfile(path, { env: Object.fromEntries(Object.entries(env).filter((pair): pair is [string, string] => pair[1] !== undefined)) });
  const shown = basename(path);
  const boxServer = env['VAGRANT_SERVER_URL'] !== undefined && /^https?:\/\/[^\s]+$/i.test(env['VAGRANT_SERVER_URL']) ? env['VAGRANT_SERVER_URL'] : VAGRANT_SERVER;
  const converted = convertRecord(record, { vagrantfile: shown, fromDir: dirname(path), toDir: dir, boxServer });
  const reads = boxServer === VAGRANT_SERVER ? record.env : [...record.env, { name: 'VAGRANT_SERVER_URL', value: boxServer, used: boxServer, at: 'vmfile init (where org/name boxes are looked up)' }];
  return { text: vmfileSource(converted, reads, shown), conversion: { gaps: converted.gaps, summary: summarize(converted.gaps, shown), machines: converted.machines } };
}

/** Any of the spellings git treats as ignoring .vmfile/ at the top counts as there. */
const IGNORES_STATE = new Set(['.vmfile', '.vmfile/', '/.vmfile', '/.vmfile/', '.vmfile/*', '/.vmfile/*']);

/** The .gitignore's text, or undefined when there is none; one that is not a readable file is refused. */
async function readGitignore(path: string): Promise<string | undefined> {
  try {
    return await readRegularFile(path, 16 << 20);
  } catch (error) {
    // ENOTDIR: the directory itself is not one, which writing the Vmfile reports.
    if (['ENOENT', 'ENOTDIR'].includes((error as NodeJS.ErrnoException).code ?? '')) return undefined;
    const why = error instanceof UnreadableFileError ? error.message : `cannot be read (${(error as Error).message})`;
    throw new ConfigError(`${path}: ${why}; vmfile init adds .vmfile/ to it`, { hint: 'make it a plain text file (or remove it), then run vmfile init again' });
  }
}

async function ignoreStateDir(path: string, text: string | undefined): Promise<InitResult['gitignore']> {
  const entry = '# vmfile: machine state and private keys\n.vmfile/\n';
  try {
    if (text === undefined) {
      await writeFile(path, entry, { flag: 'wx', mode: 0o644 });
      return 'created';
    }
    if (text.split(/\r?\n/).some((line) => IGNORES_STATE.has(line.trim()))) return 'already there';
    await writeFile(path, `${text}${text === '' || text.endsWith('\n') ? '' : '\n'}${entry}`);
    return 'added';
  } catch (error) {
    throw cannotWrite(path, error);
  }
}

function cannotWrite(path: string, error: unknown): UserError {
  return new UserError(`vmfile init cannot write ${path}: ${(error as Error).message}`, { hint: 'run it in a directory you can write to', cause: error });
}

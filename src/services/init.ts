/**
 * vmfile init: a first, commented Vmfile.ts in a directory, and `.vmfile/` (machine
 * state and private keys) in its .gitignore. An existing Vmfile is never overwritten:
 * the file is created exclusively, so even a race cannot replace one.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Handlebars from 'handlebars';
import { templatesDir } from '../cloudinit/seed.js';
import { ConfigError, UserError } from '../errors.js';
import { BOX_NAME_PATTERN, BOX_NAME_RULE } from '../vmfile/box-metadata.js';

export interface InitResult {
  vmfile: string;
  /** What was done to .gitignore. */
  gitignore: 'created' | 'added' | 'already there';
}

export async function init(options: { dir: string; box?: string }): Promise<InitResult> {
  const box = options.box ?? 'debian-12';
  if (!BOX_NAME_PATTERN.test(box)) {
    throw new ConfigError(`--box: "${box}" is not a box name (${BOX_NAME_RULE})`, { hint: 'see installed boxes with: vmfile box list' });
  }
  const vmfile = join(options.dir, 'Vmfile.ts');
  const template = Handlebars.compile(await readFile(join(templatesDir(), 'Vmfile.ts.hbs'), 'utf8'), { noEscape: true, strict: true });
  try {
    await writeFile(vmfile, template({ box }), { flag: 'wx', mode: 0o644 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new UserError(`${vmfile} already exists; vmfile init does not overwrite it`, { hint: 'edit it, or remove it first to start again' });
    }
    throw error;
  }
  return { vmfile, gitignore: await ignoreStateDir(join(options.dir, '.gitignore')) };
}

/** Any of the spellings git treats as ignoring .vmfile/ at the top counts as there. */
const IGNORES_STATE = new Set(['.vmfile', '.vmfile/', '/.vmfile', '/.vmfile/', '.vmfile/*', '/.vmfile/*']);

async function ignoreStateDir(path: string): Promise<InitResult['gitignore']> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    await writeFile(path, '# vmfile: machine state and private keys\n.vmfile/\n', { flag: 'wx', mode: 0o644 });
    return 'created';
  }
  if (text.split(/\r?\n/).some((line) => IGNORES_STATE.has(line.trim()))) return 'already there';
  await writeFile(path, `${text}${text === '' || text.endsWith('\n') ? '' : '\n'}# vmfile: machine state and private keys\n.vmfile/\n`);
  return 'added';
}

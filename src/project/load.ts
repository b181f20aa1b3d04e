/**
 * Finds and loads a Vmfile.ts at run time, with no build step for the user. jiti
 * transpiles it in a worker thread (load-worker.ts), which vmfile can end whatever the
 * Vmfile's code does; `import ... from 'vmfile'` is aliased to this running copy of
 * vmfile, so a Vmfile works wherever it lives, with or without vmfile in its own
 * node_modules.
 */
import { realpath, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, InternalError, UserError } from '../errors.js';
import { interruptible } from '../exec.js';
import { VMFILE_NAMES } from '../store/layout.js';
import { parseVmfile, type Project } from '../vmfile/config.js';
import { pathExists } from '../store/exists.js';
import type { LoadReply, LoadRequest } from './load-worker.js';
import { loaderThread } from './loader-thread.js';

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
  const loaded = await importVmfile(vmfilePath, options.timeoutMs ?? LOAD_TIMEOUT_MS);
  // Real paths: the live-folder guard compares them with the folders' (folders/sync.ts).
  const loadedFiles = await Promise.all(loaded.loadedFiles.map((file) => realpath(file).catch(() => file)));
  return parseVmfile(loaded.value, vmfilePath, dirname(vmfilePath), [...new Set(loadedFiles)]);
}

const here = dirname(fileURLToPath(import.meta.url));

/**
 * Runs the Vmfile in a thread of its own (load-worker.ts) and returns its default export
 * as plain data, with the files it loaded. Whatever the code does (throws, rejects, loops
 * or waits for ever, calls process.exit, has getters that throw) ends as a ConfigError
 * naming the file, never as vmfile's own failure or silence. The thread is ended at the
 * time limit, and at once on an interrupt (cli/main.ts).
 */
async function importVmfile(path: string, timeoutMs: number): Promise<{ value: unknown; loadedFiles: string[] }> {
  const answer = await interruptible(`load ${path}`, () => runVmfile(path, timeoutMs));
  if (!answer.ok) throw answer.exitCode === 78 ? new ConfigError(answer.message, { hint: answer.hint }) : new InternalError(answer.message, { hint: answer.hint });
  return { value: answer.value, loadedFiles: answer.loadedFiles };
}

/** The Vmfile's thread, started: its one reply (or what went wrong instead), and how an interrupt ends it. */
function runVmfile(path: string, timeoutMs: number): { done: Promise<LoadReply>; stop: (signal: NodeJS.Signals) => void } {
  // Resolves to dist/index.js when built and src/index.ts under the test runner.
  const worker = loaderThread<LoadRequest>({ path, vmfileEntry: join(here, '..', 'index') });
  let timer: NodeJS.Timeout | undefined;
  let stop: (signal: NodeJS.Signals) => void = () => undefined;
  const reply = new Promise<LoadReply>((resolvePromise, reject) => {
    const fail = (message: string, hint: string, cause?: unknown) => reject(new ConfigError(message, { hint, cause }));
    timer = setTimeout(() => fail(`${path} did not finish loading within ${timeoutMs / 1000} s`, 'a Vmfile must not wait for anything: no network, no endless loops'), timeoutMs);
    worker.once('message', resolvePromise);
    // Code the Vmfile left running may throw after its module finished (a timer, an unhandled rejection).
    worker.once('error', (error) => fail(`${path} could not be loaded: ${error.message}`, 'fix the error above; a Vmfile must `export default defineVm({...})` and leave nothing running', error));
    worker.once('exit', (code) => fail(`${path} ended the loading thread (exit code ${code})`, 'a Vmfile only describes machines; remove what ends the process'));
    stop = (signal) => reject(new UserError(`loading ${path} stopped by ${signal}`));
  });
  // Whatever the Vmfile left running (timers, sockets) ends with its thread, whatever the
  // outcome; the command does not wait for the thread to be gone.
  const done = reply.finally(() => {
    clearTimeout(timer);
    worker.unref();
    void worker.terminate();
  });
  return { done, stop: (signal) => stop(signal) };
}

/**
 * The thread a Vmfile loads in (load-worker.ts), started as early as the process can:
 * cli/entry.ts (what bin/*.js run) starts one before oclif loads, for a command that will
 * load a Vmfile, so that the thread loads jiti on the other core meanwhile; load.ts then
 * hands it the Vmfile. Light on purpose (nothing but worker_threads): it runs before anything else.
 * A thread nobody asks for ends with the process (it is unref'd).
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

let early: Worker | undefined;

/** Starts the loader's thread now; the next load takes it. */
function startLoaderEarly(): void {
  if (early !== undefined) return;
  early = startWorker(undefined);
  early.unref();
  // An idle thread that fails (it should not) is simply not used.
  early.once('error', () => (early = undefined));
  early.once('exit', () => (early = undefined));
}

/** A thread for one load: the early one when there is one, told `request`; else a new one. */
export function loaderThread<T>(request: T): Worker {
  const worker = early;
  early = undefined;
  if (worker === undefined) return startWorker(request);
  worker.removeAllListeners('error');
  worker.removeAllListeners('exit');
  worker.ref();
  worker.postMessage(request);
  return worker;
}

/** The built worker runs as it is; under the test runner its TypeScript goes through jiti too. */
function startWorker(request: unknown): Worker {
  const options = request === undefined ? {} : { workerData: request };
  if (import.meta.url.endsWith('.js')) return new Worker(new URL('./load-worker.js', import.meta.url), options);
  const jiti = createRequire(import.meta.url).resolve('jiti');
  const entry = join(dirname(fileURLToPath(import.meta.url)), 'load-worker.ts');
  return new Worker(`require(${JSON.stringify(jiti)}).createJiti(${JSON.stringify(entry)}).import(${JSON.stringify(entry)})`, { eval: true, ...options });
}

/** Commands that load no Vmfile (the first word of their argv), for which no thread is started early. */
const WITHOUT_VMFILE = new Set(['box', 'cache', 'global-status', 'init', 'completion', 'help', 'commands']);

/** Starts the thread early when the command `argv` names will load a Vmfile (bin/*.js, before oclif loads). */
export function startLoaderFor(argv: readonly string[]): void {
  const command = argv.find((arg) => !arg.startsWith('-'));
  if (command === undefined || WITHOUT_VMFILE.has(command) || argv.some((arg) => arg === '--help' || arg === '-h' || arg === '--version')) return;
  startLoaderEarly();
}

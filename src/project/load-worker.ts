/**
 * The thread a Vmfile runs in (started by load.ts, one per load, then thrown away). jiti
 * transpiles the Vmfile here, so code that never finishes (a `for (;;) {}`) blocks only
 * this thread, which vmfile can end at its time limit or on a signal. The one reply is
 * the default export as plain data (structured clone: getters run once, functions are
 * refused) or the failure as message, hint and exit code.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createJiti } from 'jiti';

export interface LoadRequest {
  path: string;
  /** What `import ... from 'vmfile'` resolves to: this running copy of vmfile. */
  vmfileEntry: string;
}

export type LoadReply = { ok: true; value: unknown; loadedFiles: string[] } | { ok: false; message: string; hint: string; exitCode: number };

/** Exit code of a configuration error (ConfigError), kept here so this thread loads nothing of vmfile. */
const EX_CONFIG = 78;

class Refusal extends Error {
  constructor(
    message: string,
    readonly hint: string,
  ) {
    super(message);
  }
}

const port = parentPort;
if (port === null) throw new Error('load-worker.ts runs only as a worker thread');
// Started early (project/loader-thread.ts), the thread loads jiti while the command loads,
// then waits for the Vmfile to load.
const { path, vmfileEntry } = (workerData as LoadRequest | undefined) ?? (await new Promise<LoadRequest>((resolve) => port.once('message', resolve)));

// A fresh thread per load holds no earlier copy of the Vmfile, so the module cache may be
// on: it is what lists the files the Vmfile loaded.
const jiti = createJiti(import.meta.url, { alias: { vmfile: vmfileEntry }, interopDefault: false });
// process.exit here would end only this thread; the Vmfile's author is told instead.
process.exit = ((code?: number | string | null) => {
  throw new Refusal(`${path} called process.exit(${code ?? ''}) while loading`, 'a Vmfile only describes machines; remove the call');
}) as typeof process.exit;

// A default export that never settles leaves this thread nothing to run; held open, it
// waits for load.ts's time limit like a loop does, and is told as that.
const holdOpen = setInterval(() => {}, 2 ** 30);
try {
  const value = await defaultExport();
  try {
    port.postMessage({ ok: true, value, loadedFiles: loadedFiles() } satisfies LoadReply);
  } catch (error) {
    throw new Refusal(`${path}: its default export is not plain data (${firstLine(error)})`, 'export an object of strings, numbers, booleans, arrays and objects: defineVm({...})');
  }
} catch (error) {
  const refusal = error instanceof Refusal ? error : new Refusal(`${path} could not be loaded: ${firstLine(error)}`, 'fix the TypeScript error above; the Vmfile must `export default defineVm({...})`');
  port.postMessage({ ok: false, message: refusal.message, hint: refusal.hint, exitCode: EX_CONFIG } satisfies LoadReply);
} finally {
  clearInterval(holdOpen);
}

async function defaultExport(): Promise<unknown> {
  const module: unknown = await jiti.import(path);
  if (typeof module !== 'object' || module === null || !('default' in module) || module.default === undefined) {
    throw new Refusal(`${path} has no default export`, 'end it with: export default defineVm({ box: "debian-12", ... })');
  }
  // A default export may be a promise (export default loadConfig()); then its value counts.
  return (await module.default) as unknown;
}

/**
 * The Vmfile, then every local file jiti compiled or required for it (TypeScript, CommonJS,
 * JSON), in load order; packages under node_modules and vmfile's own files are left out.
 * An ES module Node imports natively (.mjs, or .js under "type": "module") and what it
 * imports never pass through jiti and are not listed.
 */
function loadedFiles(): string[] {
  const own = vmfileEntry.slice(0, vmfileEntry.lastIndexOf('/') + 1);
  const local = Object.keys(jiti.cache).filter((file) => file !== path && !file.startsWith(own) && !file.split('/').includes('node_modules'));
  return [path, ...local];
}

function firstLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split('\n').slice(0, 6).join('\n');
}

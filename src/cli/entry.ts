/**
 * What every bin/*.js runs: the Vmfile's loading thread is started (for a command that
 * loads one) before oclif and the commands are imported, so it loads on the other core
 * meanwhile. Light on purpose: it imports nothing but the thread's starter and the words
 * of an interruption. A signal that comes while the rest loads (a second or more on a busy
 * host) ends vmfile at once, as every signal does (cli/main.ts): nothing has started yet
 * that would need cleaning up.
 */
import { startLoaderFor } from '../project/loader-thread.js';
import { INTERRUPTS, reportInterrupted } from './interrupted.js';

/** Runs the command `argv`; `binUrl` is the bin file's import.meta.url (oclif finds the package from it). */
export async function runCli(argv: string[], binUrl: string): Promise<void> {
  let loading = true;
  // Left in place afterwards, doing nothing: removing a signal's last listener while the
  // loading thread ran lost the signals that came after it (Node 20).
  for (const signal of INTERRUPTS) process.on(signal, () => loading && process.exit(reportInterrupted(signal)));
  startLoaderFor(argv);
  if (argv[0] === 'status') {
    const { quickStatus } = await import('./quick-status.js');
    const code = await quickStatus(argv.slice(1));
    if (code !== undefined) {
      process.exitCode = code;
      // As after any command (cli/main.ts): a second for pending output, then it ends whatever a Vmfile left running.
      setTimeout(() => process.exit(), 1000).unref();
      return;
    }
  }
  const { main } = await import('./main.js');
  loading = false;
  await main(argv, binUrl);
}

/**
 * What every bin/*.js runs: the Vmfile's loading thread is started (for a command that
 * loads one) before oclif and the commands are imported, so it loads on the other core
 * meanwhile. Light on purpose: it imports nothing but the thread's starter.
 */
import { startLoaderFor } from '../project/loader-thread.js';

/** Runs the command `argv`; `binUrl` is the bin file's import.meta.url (oclif finds the package from it). */
export async function runCli(argv: string[], binUrl: string): Promise<void> {
  startLoaderFor(argv);
  const { main } = await import('./main.js');
  await main(argv, binUrl);
}

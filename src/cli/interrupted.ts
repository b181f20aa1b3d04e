/**
 * How vmfile ends on a signal: one message, and exit 128 + the signal's number. Shared by
 * cli/main.ts and by cli/entry.ts (for a signal that comes before main.ts is loaded), so
 * it imports nothing.
 */

/** The signals that end vmfile this way. */
export const INTERRUPTS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

let reported = false;

/** Says once that vmfile was interrupted; the exit code to end with. */
export function reportInterrupted(signal: NodeJS.Signals): number {
  if (!reported) process.stderr.write(`error: interrupted by ${signal}\nhint: run the command again: it cleans up what is left and goes on from what is done\n`);
  reported = true;
  return signalExitCode(signal);
}

export function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + (signal === 'SIGHUP' ? 1 : signal === 'SIGINT' ? 2 : 15);
}

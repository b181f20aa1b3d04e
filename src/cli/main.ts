/**
 * The one top-level handler: runs oclif, prints any failure as a sentence with its
 * hint, and sets the exit code. Nothing else in vmfile ends the process.
 */
import { Errors, flush, run } from '@oclif/core';
import { describeFailure } from '../errors.js';
import { signalRunning } from '../exec.js';
import { INTERRUPTS, reportInterrupted, signalExitCode } from './interrupted.js';

let interruptedBy: NodeJS.Signals | undefined;

/** How long the command's own cleanup may run after the first signal: half a second, so that vmfile is gone within one even on a busy host. */
const STOP_WITHIN_MS = 500;

/**
 * Ctrl-C (or SIGTERM, SIGHUP) ends vmfile within a second, whatever it is doing. The
 * programs it waits for get the signal once and clean up (mmdebstrap unmounts its
 * chroot, qemu-img stops), a Vmfile still loading has its thread ended, and the
 * command's own cleanup runs as their failure unwinds it; then vmfile exits 128+signal.
 * A program that needs longer than vmfile stays goes on cleaning up alone after vmfile
 * has exited: it is not signalled again, though a write to vmfile's closed pipes may end
 * it. Whatever is left (a staging directory, a machine whose start did not finish) is
 * recovered by the next command, as after a kill (docs/design.md, "Faults"). A second
 * signal ends vmfile at once.
 */
function handleInterrupts(): void {
  for (const signal of INTERRUPTS) {
    process.on(signal, () => {
      if (interruptedBy !== undefined) process.exit(reportInterrupted(signal));
      interruptedBy = signal;
      process.exitCode = signalExitCode(signal);
      signalRunning(signal);
      setTimeout(() => process.exit(reportInterrupted(signal)), STOP_WITHIN_MS).unref();
    });
  }
}

export async function main(argv: string[], root: string): Promise<void> {
  handleInterrupts();
  try {
    await run(argv, root);
    await flush();
  } catch (error) {
    process.exitCode = interruptedBy === undefined ? report(error, argv.includes('--debug') || process.env['VMFILE_DEBUG'] === '1') : reportInterrupted(interruptedBy);
  }
  if (interruptedBy !== undefined) process.exitCode = signalExitCode(interruptedBy);
  // The work is done. Code vmfile ran from a Vmfile may have left timers or sockets that
  // would keep the process alive; a second for pending output, then it ends regardless.
  setTimeout(() => process.exit(), 1000).unref();
}

function report(error: unknown, debug: boolean): number {
  if (error instanceof Errors.ExitError) return error.oclif.exit ?? 0;
  // What oclif throws itself is a usage error (unknown flag or command, missing value): exit 2.
  if (error instanceof Errors.CLIError && !(error.cause instanceof Error) && !isVmfileError(error)) {
    process.stderr.write(`error: ${error.message.replace(/\nSee more help with --help$/, '')}\nhint: see --help\n`);
    return error.oclif.exit ?? 2;
  }
  const failure = describeFailure(error, debug);
  process.stderr.write(`${failure.text}\n`);
  return failure.exitCode;
}

function isVmfileError(error: unknown): boolean {
  return typeof error === 'object' && error !== null && 'exitCode' in error && 'hint' in error;
}

/**
 * The one top-level handler: runs oclif, prints any failure as a sentence with its
 * hint, and sets the exit code. Nothing else in vmfile ends the process.
 */
import { Errors, flush, run } from '@oclif/core';
import { describeFailure } from '../errors.js';
import { runningCount, signalRunning } from '../exec.js';

let interruptedBy: NodeJS.Signals | undefined;

/**
 * Ctrl-C (or SIGTERM, SIGHUP) does not end vmfile on the spot: the programs it waits for
 * get the signal and clean up (mmdebstrap unmounts its chroot, qemu-img stops), the
 * command's own cleanup runs as their failure unwinds it, then vmfile exits 128+signal.
 * A wait with no program behind it (SSH, a lock) is not waited out: vmfile exits a few
 * seconds after the signal once no program is left. A second signal ends it at once.
 * Whatever is left (a staging directory, a machine whose start did not finish) is
 * recovered by the next command, as after a kill.
 */
function handleInterrupts(): void {
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      if (interruptedBy !== undefined) process.exit(signalExitCode(signal));
      interruptedBy = signal;
      process.stderr.write(`\nvmfile: ${signal} received, stopping once the programs it runs have cleaned up (${signal === 'SIGINT' ? 'Ctrl-C again' : 'a second signal'} stops at once)\n`);
      signalRunning(signal);
      const since = Date.now();
      setInterval(() => {
        if (runningCount() === 0 && Date.now() - since > 3000) {
          reportInterrupted(signal);
          process.exit(signalExitCode(signal));
        }
      }, 250).unref();
    });
  }
}

let interruptReported = false;

function reportInterrupted(signal: NodeJS.Signals): number {
  if (!interruptReported) process.stderr.write(`error: interrupted by ${signal}\nhint: run the command again: it cleans up what is left and goes on from what is done\n`);
  interruptReported = true;
  return signalExitCode(signal);
}

function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + (signal === 'SIGHUP' ? 1 : signal === 'SIGINT' ? 2 : 15);
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

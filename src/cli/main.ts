/**
 * The one top-level handler: runs oclif, prints any failure as a sentence with its
 * hint, and sets the exit code. Nothing else in vmfile ends the process.
 */
import { Errors, flush, run } from '@oclif/core';
import { describeFailure } from '../errors.js';

export async function main(argv: string[], root: string): Promise<void> {
  try {
    await run(argv, root);
    await flush();
  } catch (error) {
    process.exitCode = report(error, argv.includes('--debug') || process.env['VMFILE_DEBUG'] === '1');
  }
  // The work is done. Code vmfile ran from a Vmfile may have left timers or sockets that
  // would keep the process alive; a second for pending output, then it ends regardless.
  setTimeout(() => process.exit(), 1000).unref();
}

function report(error: unknown, debug: boolean): number {
  if (error instanceof Errors.ExitError) return error.oclif.exit ?? 0;
  if (error instanceof Errors.CLIError && !(error.cause instanceof Error) && error.name !== 'Error' && !isVmfileError(error)) {
    process.stderr.write(`error: ${error.message}\nhint: see --help\n`);
    return error.oclif.exit ?? 2;
  }
  const failure = describeFailure(error, debug);
  process.stderr.write(`${failure.text}\n`);
  return failure.exitCode;
}

function isVmfileError(error: unknown): boolean {
  return typeof error === 'object' && error !== null && 'exitCode' in error && 'hint' in error;
}

/**
 * What a QMP failure says: every failure of the client is a QmpError, worded here for
 * the user who meets it (QEMU not running, the connection gone, a stream that is not
 * QMP, an aborted wait). The connection itself is in client.ts.
 */
import { VmfileError } from '../errors.js';

export class QmpError extends VmfileError {
  constructor(
    message: string,
    /** QMP error class (e.g. "GenericError"), or 'Disconnected'/'Timeout'/'Aborted'/'Protocol'. */
    readonly errorClass: string,
    options: { hint?: string; cause?: unknown } = {},
  ) {
    super(message, options);
  }
}

export function protocolError(socketPath: string, reason: string): QmpError {
  return new QmpError(`QMP socket ${socketPath}: ${reason}`, 'Protocol', {
    hint: 'check that the path is the QMP socket of a QEMU process (-qmp unix:...,server=on)',
  });
}

/** Why a wait failed once the connection had ended: closed by vmfile, by QEMU, or by a protocol failure. */
export function endedError(what: string, socketPath: string, reason: 'client' | 'remote' | QmpError, socketError: Error | undefined): QmpError {
  if (reason instanceof QmpError) {
    return new QmpError(`${what}: ${reason.message}`, reason.errorClass, {
      ...(reason.hint === undefined ? {} : { hint: reason.hint }),
      cause: reason,
    });
  }
  const why = reason === 'client' ? 'the connection was closed by vmfile' : 'the connection closed (did QEMU exit?)';
  return new QmpError(`${what} on ${socketPath}: ${why}`, 'Disconnected', {
    ...(socketError === undefined ? {} : { cause: socketError }),
  });
}

/** Rewords the failures a user meets when QEMU is not there. */
export function connectFailure(error: unknown, socketPath: string, socketError: Error | undefined, timeoutMs: number): unknown {
  if (!(error instanceof QmpError)) return error;
  const hint = 'start the machine first, or check that QEMU was started with this -qmp socket';
  const code = errnoCode(socketError);
  if (error.errorClass === 'Disconnected' && code !== undefined) {
    return new QmpError(`cannot connect to QMP socket ${socketPath} (${code}); QEMU may not be running`, 'Disconnected', { hint, cause: socketError });
  }
  if (error.errorClass === 'Timeout') {
    return new QmpError(`no QMP handshake on ${socketPath} within ${timeoutMs} ms; QEMU may not be running or may be hung`, 'Timeout', { hint, cause: error });
  }
  return error;
}

export function abortedError(what: string, socketPath: string, signal: AbortSignal): QmpError {
  return new QmpError(`${what} on ${socketPath}: aborted`, 'Aborted', { cause: signal.reason });
}

function errnoCode(error: Error | undefined): string | undefined {
  if (error === undefined || !('code' in error)) return undefined;
  return typeof error.code === 'string' ? error.code : undefined;
}

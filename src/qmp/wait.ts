/**
 * One wait of the QMP client (connect, a command's reply, an event): settled by what it
 * waits for, its deadline, an abort signal, or the connection going away, whichever
 * comes first; everything else is torn down, timer included, so no timer outlives it.
 */
import { abortedError, QmpError } from './errors.js';

/** Something in flight that must settle if the connection goes away. */
export interface Waiter {
  what: string;
  fail(error: QmpError): void;
}

export interface Settle<T> {
  resolve(value: T): void;
  reject(error: QmpError): void;
}

/**
 * `start` registers what would settle the wait and returns its cleanup; `waiters` is the
 * connection's set of what is in flight, which a disconnect fails all at once.
 */
export function settleOnce<T>(what: string, socketPath: string, waiters: Set<Waiter>, options: { timeoutMs: number; signal?: AbortSignal | undefined }, start: (settle: Settle<T>) => () => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const { signal, timeoutMs } = options;
    if (signal?.aborted === true) {
      reject(abortedError(what, socketPath, signal));
      return;
    }
    let settled = false;
    let cleanup = (): void => {};
    let timer: NodeJS.Timeout | undefined;
    const finish = (): boolean => {
      if (settled) return false;
      settled = true;
      if (timer !== undefined) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      waiters.delete(waiter);
      cleanup();
      return true;
    };
    const waiter: Waiter = {
      what,
      fail: (error) => {
        if (finish()) reject(error);
      },
    };
    const onAbort = (): void => {
      if (signal !== undefined) waiter.fail(abortedError(what, socketPath, signal));
    };
    if (timeoutMs !== Infinity) {
      timer = setTimeout(() => {
        waiter.fail(
          new QmpError(`${what} on ${socketPath}: no answer within ${timeoutMs} ms`, 'Timeout', {
            hint: 'QEMU may be hung or very busy; check its log and the serial console',
          }),
        );
      }, timeoutMs);
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    waiters.add(waiter);
    const settle: Settle<T> = {
      resolve: (value) => {
        if (finish()) resolve(value);
      },
      reject: waiter.fail,
    };
    const stop = start(settle);
    if (settled) stop();
    else cleanup = stop;
  });
}

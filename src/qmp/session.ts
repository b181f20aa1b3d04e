/** Short QMP conversations: connect, do one thing, disconnect. */
import { VmfileError } from '../errors.js';
import { QmpClient, type QmpCallOptions } from './client.js';

export async function withQmp<T>(socket: string, fn: (qmp: QmpClient) => Promise<T>, options: QmpCallOptions = {}): Promise<T> {
  const qmp = await QmpClient.connect(socket, { timeoutMs: options.timeoutMs ?? 5000, ...(options.signal === undefined ? {} : { signal: options.signal }) });
  try {
    return await fn(qmp);
  } finally {
    qmp.close();
  }
}

/**
 * Runs an HMP command that prints nothing on success (savevm, loadvm, delvm): QEMU
 * reports their errors only as printed text, so any output is the failure.
 */
export async function hmpQuiet(qmp: QmpClient, commandLine: string, what: string, timeoutMs = 120_000): Promise<void> {
  const output = (await qmp.hmp(commandLine, { timeoutMs })).trim();
  if (output !== '') throw new VmfileError(`${what}: ${output.replace(/^Error:\s*/i, '')}`);
}

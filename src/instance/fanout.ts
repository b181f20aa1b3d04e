/**
 * The one policy for commands over several machines: every machine is attempted,
 * whatever happens to the others; each outcome is kept; if any failed, one error names
 * every failure (and which machines succeeded) after all have finished. A single
 * machine's failure is thrown as it is.
 */
import { VmfileError, programSaid } from '../errors.js';

export interface FanoutOptions {
  /** Machines at once: boot and halt overlap; anything holding a guest's console goes one by one. */
  parallel: boolean;
  /** How a success reads in the summary: "is up", "halted". */
  succeeded: string;
  /** What to do after fixing the failures. */
  retry: string;
}

export async function forEachMachine<M extends { name: string }, T>(machines: readonly M[], run: (machine: M) => Promise<T>, options: FanoutOptions): Promise<T[]> {
  const settled: PromiseSettledResult<T>[] = [];
  if (options.parallel) {
    settled.push(...(await Promise.allSettled(machines.map((machine) => run(machine)))));
  } else {
    for (const machine of machines) settled.push(...(await Promise.allSettled([run(machine)])));
  }
  const failures = settled.flatMap((result, index) => (result.status === 'rejected' ? [{ machine: machines[index]?.name ?? '?', error: result.reason as unknown }] : []));
  const results = settled.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  if (failures.length === 0) return results;
  if (machines.length === 1) throw failures[0]?.error;
  const ok = machines.filter((_, index) => settled[index]?.status === 'fulfilled').map((machine) => machine.name);
  const lines = failures.map(({ machine, error }) => {
    const message = error instanceof Error ? error.message : String(error);
    // A failed program's own words say why (QEMU: which socket, which port), as for a single machine.
    return `  - ${message.includes(`"${machine}"`) ? message : `machine "${machine}": ${message}`}${programSaid(error, 5, '      | ')}`;
  });
  throw new SeveralFailed(
    `${failures.length} of ${machines.length} machines failed${ok.length > 0 ? ` (${ok.join(', ')} ${options.succeeded})` : ''}:\n${lines.join('\n')}`,
    failures.map((failure) => failure.error),
    { hint: options.retry },
  );
}

/** Several machines failed; the exit code is the first failure's own (70 only if that one was a bug). */
export class SeveralFailed extends VmfileError {
  override readonly exitCode: number;
  constructor(
    message: string,
    readonly failures: readonly unknown[],
    options: { hint: string },
  ) {
    super(message, options);
    const first = failures.find((failure) => failure instanceof VmfileError);
    this.exitCode = first instanceof VmfileError ? first.exitCode : 70;
  }
}

/** A replay's verdict: the digests of the declared outputs as the bundle's lock records them, against a new run's. Pure. */
import type { LockFile } from '../vmfile/lock-file.js';

export type OutputVerdict = 'match' | 'differs' | 'missing' | 'new';

export interface OutputCheck {
  machine: string;
  step: string;
  path: string;
  /** As the bundle's lock records it. */
  locked?: string;
  /** As this run recorded it. */
  now?: string;
  verdict: OutputVerdict;
}

/**
 * Every output either lock records for `machines`, in order of machine, step and path.
 * An output the new run did not make is missing; one the study never recorded is new:
 * both are failures, since the study no longer gives what it gave.
 */
export function compareOutputs(locked: LockFile, now: LockFile, machines: readonly string[]): OutputCheck[] {
  const checks: OutputCheck[] = [];
  for (const machine of machines) {
    const before = locked.machines[machine]?.outputs ?? {};
    const after = now.machines[machine]?.outputs ?? {};
    for (const step of sortedUnion(Object.keys(before), Object.keys(after))) {
      const was = before[step] ?? {};
      const is = after[step] ?? {};
      for (const path of sortedUnion(Object.keys(was), Object.keys(is))) {
        const old = was[path];
        const fresh = is[path];
        const verdict: OutputVerdict = old === undefined ? 'new' : fresh === undefined ? 'missing' : old === fresh ? 'match' : 'differs';
        checks.push({ machine, step, path, ...(old === undefined ? {} : { locked: old }), ...(fresh === undefined ? {} : { now: fresh }), verdict });
      }
    }
  }
  return checks;
}

function sortedUnion(a: readonly string[], b: readonly string[]): string[] {
  return [...new Set([...a, ...b])].sort();
}

/** The lock without any recorded outputs: a replay starts from none, so an output no step makes again shows as missing, never as the study's own digest. */
export function withoutOutputs(lock: LockFile): LockFile {
  return { ...lock, machines: Object.fromEntries(Object.entries(lock.machines).map(([name, entry]) => [name, Object.fromEntries(Object.entries(entry).filter(([key]) => key !== 'outputs')) as typeof entry])) };
}

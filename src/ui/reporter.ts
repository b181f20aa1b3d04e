/**
 * How services tell the user what is happening, without knowing about terminals:
 * phases with durations, progress while waiting, notices, and provisioning output.
 */
export interface Phase {
  /** Still waiting; shown as a progress line. */
  progress(text: string): void;
  /**
   * How far a measurable piece of work is (0..1), with its size in bytes when known; drawn
   * as a bar. `startFraction`: how far it was when the phase began (a resumed download).
   */
  measure(fraction: number, totalBytes?: number, startFraction?: number): void;
  done(detail?: string): void;
  fail(): void;
}

export interface Reporter {
  phase(machine: string, title: string): Phase;
  info(machine: string, text: string): void;
  notice(text: string): void;
  output(machine: string, step: string, stream: 'stdout' | 'stderr', chunk: string): void;
}

/** Runs `fn` as a phase: done with its duration when it resolves, failed when it throws. */
export async function inPhase<T>(reporter: Reporter, machine: string, title: string, fn: (phase: Phase) => Promise<T>): Promise<T> {
  const phase = reporter.phase(machine, title);
  try {
    const result = await fn(phase);
    phase.done();
    return result;
  } catch (error) {
    phase.fail();
    throw error;
  }
}

/**
 * A reporter for work done on behalf of `outer` (a warm state's generic machine, made
 * while a machine waits for it): its phases become progress lines of `outer`, so the
 * user sees one phase with its duration; notices, lines and step output pass through.
 */
export function within(outer: Phase, reporter: Reporter): Reporter {
  return {
    phase(_machine, title) {
      outer.progress(title.charAt(0).toLowerCase() + title.slice(1));
      return { progress: (text) => outer.progress(text), measure: (fraction, total, start) => outer.measure(fraction, total, start), done: () => {}, fail: () => {} };
    },
    info: (machine, text) => reporter.info(machine, text),
    notice: (text) => reporter.notice(text),
    output: (machine, step, stream, chunk) => reporter.output(machine, step, stream, chunk),
  };
}

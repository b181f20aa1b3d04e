/** A Reporter that shows nothing, for unit tests of code that reports progress. */
import type { Reporter } from '../../src/ui/reporter.js';

export const quiet: Reporter = {
  phase: () => ({ progress: () => undefined, measure: () => undefined, done: () => undefined, fail: () => undefined }),
  info: () => undefined,
  notice: () => undefined,
  output: () => undefined,
};

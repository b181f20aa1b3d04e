/** The terminal rendering of a Reporter: one line per phase, with how long it took. */
import type { Phase, Reporter } from './reporter.js';

export function consoleReporter(stream: NodeJS.WriteStream = process.stderr): Reporter {
  const partial = new Map<string, string>();
  const write = (text: string): void => {
    stream.write(text);
  };
  return {
    phase(machine, title): Phase {
      const started = performance.now();
      let lastProgress = 0;
      write(`==> ${machine}: ${title}...\n`);
      const seconds = (): string => `${((performance.now() - started) / 1000).toFixed(1)}s`;
      return {
        progress(text) {
          // Every 5 s is enough to show life without flooding a CI log.
          const now = performance.now();
          if (now - lastProgress < 5000) return;
          lastProgress = now;
          write(`    ${machine}: ${text}\n`);
        },
        done(detail) {
          write(`==> ${machine}: ${title}: done in ${seconds()}${detail === undefined ? '' : ` (${detail})`}\n`);
        },
        fail() {
          write(`==> ${machine}: ${title}: failed after ${seconds()}\n`);
        },
      };
    },
    info(machine, text) {
      write(`==> ${machine}: ${text}\n`);
    },
    notice(text) {
      write(`note: ${text}\n`);
    },
    output(machine, step, _stream, chunk) {
      const key = `${machine}/${step}`;
      const lines = ((partial.get(key) ?? '') + chunk).split('\n');
      partial.set(key, lines.pop() ?? '');
      for (const line of lines) write(`    ${key} | ${line}\n`);
    },
  };
}

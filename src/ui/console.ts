/**
 * The terminal rendering of a Reporter: one line per phase, with how long it took. A
 * measured phase draws its bar in place on a terminal (at most ten times a second) and
 * as a plain line every tenth of the way when the output is a file or a CI log.
 */
import { renderProgress } from './progress.js';
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
      let lastDraw = 0;
      let lastTenth = -1;
      let barShown = false;
      write(`==> ${machine}: ${title}...\n`);
      const endBar = (): void => {
        if (barShown && stream.isTTY) write('\n');
        barShown = false;
      };
      const seconds = (): string => `${((performance.now() - started) / 1000).toFixed(1)}s`;
      return {
        progress(text) {
          // Every 5 s is enough to show life without flooding a CI log.
          const now = performance.now();
          if (now - lastProgress < 5000) return;
          lastProgress = now;
          endBar();
          write(`    ${machine}: ${text}\n`);
        },
        measure(fraction, totalBytes, startFraction) {
          const sample = { fraction, elapsedMs: performance.now() - started, ...(totalBytes === undefined ? {} : { totalBytes }), ...(startFraction === undefined ? {} : { startFraction }) };
          const line = `    ${machine}: ${renderProgress(sample)}`;
          if (stream.isTTY) {
            const now = performance.now();
            if (now - lastDraw < 100 && fraction < 1) return;
            lastDraw = now;
            write(`\r${line}\x1b[K`);
            barShown = true;
            return;
          }
          const tenth = Math.floor(Math.min(1, fraction) * 10);
          if (tenth <= lastTenth) return;
          lastTenth = tenth;
          write(`${line}\n`);
        },
        done(detail) {
          endBar();
          write(`==> ${machine}: ${title}: done in ${seconds()}${detail === undefined ? '' : ` (${detail})`}\n`);
        },
        fail() {
          endBar();
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

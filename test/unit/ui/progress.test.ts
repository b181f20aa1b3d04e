import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, test } from 'vitest';
import { convertImage } from '../../../src/qemu/img.js';
import { consoleReporter } from '../../../src/ui/console.js';
import { renderProgress } from '../../../src/ui/progress.js';
import { tempDir } from '../temp-dir.js';

describe('renderProgress', () => {
  test('bar, percent, bytes, rate and time left', () => {
    expect(renderProgress({ fraction: 0.5, totalBytes: 2 * 1024 ** 3, elapsedMs: 10_000 })).toBe('[############............]  50%, 1GiB of 2GiB, 102.4MiB/s, ETA 10 s');
    expect(renderProgress({ fraction: 1, elapsedMs: 3000 })).toBe('[########################] 100%');
    expect(renderProgress({ fraction: 0.25, elapsedMs: 90_000 })).toBe('[######..................]  25%, ETA 4 min 30 s');
  });

  test('a resumed transfer: rate and time left count only what came in this run', () => {
    // Half was there already; a quarter more came in 10 s: 51.2MiB/s, and the last quarter takes 10 s more.
    expect(renderProgress({ fraction: 0.75, totalBytes: 2 * 1024 ** 3, elapsedMs: 10_000, startFraction: 0.5 })).toBe('[##################......]  75%, 1.5GiB of 2GiB, 51.2MiB/s, ETA 10 s');
    expect(renderProgress({ fraction: 0.5, totalBytes: 2 * 1024 ** 3, elapsedMs: 2000, startFraction: 0.5 })).toBe('[############............]  50%, 1GiB of 2GiB, 0B/s');
  });
});

/** A stream that is not a terminal, as in CI. */
function capture(): { stream: NodeJS.WriteStream; text: () => string } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString();
      done();
    },
  }) as unknown as NodeJS.WriteStream;
  return { stream, text: () => text };
}

describe('a measured phase on a stream that is not a terminal', () => {
  test('prints a plain line each tenth of the way, never the same tenth twice', () => {
    const out = capture();
    const phase = consoleReporter(out.stream).phase('default', 'Converting');
    for (let step = 0; step <= 100; step++) phase.measure(step / 100);
    phase.done();
    const bars = out.text().split('\n').filter((line) => line.includes('%'));
    expect(bars.map((line) => /(\d+)%/.exec(line)?.[1])).toEqual(['0', '10', '20', '30', '40', '50', '60', '70', '80', '90', '100']);
    expect(out.text()).not.toContain('\r');
  });
});

describe('convertImage with progress', () => {
  test("reads qemu-img's -p output up to 100%", async () => {
    const dir = await tempDir();
    execFileSync('qemu-img', ['create', '-q', '-f', 'raw', join(dir, 'in.raw'), '64M']);
    const seen: number[] = [];
    await convertImage(join(dir, 'in.raw'), join(dir, 'out.qcow2'), 'qcow2', { sourceFormat: 'raw', onProgress: (fraction) => seen.push(fraction) });
    expect(seen.at(-1)).toBe(1);
    expect(seen.every((fraction, index) => index === 0 || fraction >= (seen[index - 1] ?? 0))).toBe(true);
  });
});

import { describe, expect, test } from 'vitest';
import { compareOutputs, withoutOutputs } from '../../../src/study/compare.js';
import type { LockFile } from '../../../src/vmfile/lock-file.js';

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);
const C = 'c'.repeat(64);

function lock(outputs: Record<string, Record<string, Record<string, string>>>): LockFile {
  return {
    lockVersion: 1,
    machines: Object.fromEntries(Object.entries(outputs).map(([name, steps]) => [name, { box: 'debian-12', version: '1', sha256: A, outputs: steps }])),
  } as LockFile;
}

describe("a replay's verdict on the outputs", () => {
  test('each output either lock records: match, differs, missing (not made again) or new (never recorded)', () => {
    const study = lock({ web: { analyse: { '/vmfile/results/a.csv': A, '/vmfile/results/b.csv': B, '/vmfile/results/gone.csv': C } }, db: { dump: { '/srv/dump.sql': A } } });
    const now = lock({ web: { analyse: { '/vmfile/results/a.csv': A, '/vmfile/results/b.csv': C, '/vmfile/results/extra.csv': A } }, db: { dump: { '/srv/dump.sql': A } } });
    expect(compareOutputs(study, now, ['web', 'db'])).toEqual([
      { machine: 'web', step: 'analyse', path: '/vmfile/results/a.csv', locked: A, now: A, verdict: 'match' },
      { machine: 'web', step: 'analyse', path: '/vmfile/results/b.csv', locked: B, now: C, verdict: 'differs' },
      { machine: 'web', step: 'analyse', path: '/vmfile/results/extra.csv', now: A, verdict: 'new' },
      { machine: 'web', step: 'analyse', path: '/vmfile/results/gone.csv', locked: C, verdict: 'missing' },
      { machine: 'db', step: 'dump', path: '/srv/dump.sql', locked: A, now: A, verdict: 'match' },
    ]);
  });

  test('a step that did not run again reports its outputs missing once the replay starts from a lock without outputs', () => {
    const study = lock({ web: { analyse: { '/out': A } } });
    const cleared = withoutOutputs(study);
    expect(cleared.machines['web']).not.toHaveProperty('outputs');
    expect(cleared.machines['web']?.sha256).toBe(A);
    expect(compareOutputs(study, cleared, ['web'])).toEqual([{ machine: 'web', step: 'analyse', path: '/out', locked: A, verdict: 'missing' }]);
    // The study's own lock is left as it was.
    expect(study.machines['web']?.outputs).toEqual({ analyse: { '/out': A } });
  });
});

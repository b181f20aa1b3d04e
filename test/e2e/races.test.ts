/**
 * Races between vmfile processes, without booting: several processes starting one
 * project's network switch at the same moment must end with exactly one switch, which
 * they all use (two would split the private network). 50 rounds of 3 processes, with
 * the built code.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hubsFor, repoRoot } from './cli.js';

function startNetworkIn(project: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const module = pathToFileURL(join(repoRoot, 'dist', 'network', 'project-hub.js')).href;
  const script = `import(${JSON.stringify(module)}).then((m) => m.startNetwork(process.argv[1])).then((s) => console.log(s), (e) => { console.error(e.message); process.exitCode = 1; });`;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['-e', script, project], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('close', (code) => resolve({ code, stdout: stdout.trim(), stderr }));
  });
}

describe('races between vmfile processes', () => {
  let project: string;
  beforeAll(async () => {
    project = await mkdtemp(join(tmpdir(), 'vmfile-e2e-races-'));
    await mkdir(join(project, '.vmfile'), { mode: 0o700 });
  });
  afterAll(async () => {
    await rm(project, { recursive: true, force: true });
  });

  it('3 processes starting one project\'s network switch at once: exactly one switch, 50 rounds in 50', async () => {
    const outcomes: string[] = [];
    for (let round = 0; round < 50; round++) {
      const results = await Promise.all([startNetworkIn(project), startNetworkIn(project), startNetworkIn(project)]);
      for (const result of results) expect(result.code, result.stderr).toBe(0);
      const socket = results[0]?.stdout ?? '';
      expect(results.map((result) => result.stdout)).toEqual([socket, socket, socket]);
      const hubs = await hubsFor(socket);
      outcomes.push(`${hubs.length}`);
      for (const pid of hubs) process.kill(pid, 'SIGTERM');
      for (let wait = 0; wait < 100 && (await hubsFor(socket)).length > 0; wait++) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(outcomes).toEqual(Array.from({ length: 50 }, () => '1'));
  });
});

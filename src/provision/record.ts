/**
 * Which steps have completed on a machine. A step is recorded only after it exited 0,
 * and the record is saved after every step, so a failure halfway keeps what succeeded.
 */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { writeJsonAtomic } from '../state/machine.js';

const recordSchema = z.object({
  steps: z.record(z.string(), z.object({ hash: z.string(), at: z.string() })),
});

export type ProvisionRecord = z.infer<typeof recordSchema>;

export async function readRecord(path: string): Promise<ProvisionRecord> {
  try {
    const parsed = recordSchema.safeParse(JSON.parse(await readFile(path, 'utf8')));
    if (parsed.success) return parsed.data;
  } catch {
    // Missing: nothing has run yet.
  }
  return { steps: {} };
}

export async function markDone(path: string, record: ProvisionRecord, stepId: string, hash: string): Promise<void> {
  record.steps[stepId] = { hash, at: new Date().toISOString() };
  await writeJsonAtomic(path, record);
}

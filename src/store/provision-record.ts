/**
 * Which steps have completed on a machine. A step is recorded only after it exited 0,
 * and the record is saved after every step, so a failure halfway keeps what succeeded.
 */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { ConfigError } from '../errors.js';
import { writeJsonAtomic } from './json.js';

const recordSchema = z.object({
  steps: z.record(z.string(), z.object({ hash: z.string(), at: z.string() })),
});

export type ProvisionRecord = z.infer<typeof recordSchema>;

/**
 * The record, or an empty one when nothing has run yet. A damaged record is an error,
 * not "nothing ran": guessing would run every once-step again without a word.
 */
export async function readRecord(path: string): Promise<ProvisionRecord> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { steps: {} };
    throw damaged(path, (error as Error).message);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw damaged(path, `not JSON (${(error as Error).message})`);
  }
  const parsed = recordSchema.safeParse(value);
  if (!parsed.success) throw damaged(path, 'not a provisioning record');
  return parsed.data;
}

function damaged(path: string, reason: string): ConfigError {
  return new ConfigError(`provisioning record ${path} is damaged: ${reason}`, {
    hint: 'delete it to run every once-step again (vmfile provision), or restore it from a backup',
  });
}

export async function markDone(path: string, record: ProvisionRecord, stepId: string, hash: string): Promise<void> {
  record.steps[stepId] = { hash, at: new Date().toISOString() };
  await writeJsonAtomic(path, record);
}

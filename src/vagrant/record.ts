/**
 * What vagrant/recorder.rb prints after running a Vagrantfile: every configuration call
 * the file made, with its arguments and where, and every environment variable it read.
 * It comes from running someone's code, so it is untrusted input: parsed here with zod,
 * bounded in size and depth. Pure.
 */
import { z } from 'zod';

/** A Ruby value as the recorder writes it: JSON, with symbols as strings. */
export type RubyValue = string | number | boolean | null | RubyValue[] | { [key: string]: RubyValue };

const MAX_TEXT = 1 << 20;

const rubyValueSchema: z.ZodType<RubyValue> = z.lazy(() =>
  z.union([z.string().max(MAX_TEXT), z.number(), z.boolean(), z.null(), z.array(rubyValueSchema).max(10_000), z.record(z.string().max(4096), rubyValueSchema)]),
);

/** One call on a config object: `config.vm.network "forwarded_port", guest: 80` is target ["vm"], method "network". */
export interface RecordedCall {
  target: string[];
  method: string;
  args: RubyValue[];
  /** "Vagrantfile:12", or null when Ruby gave no place. */
  at: string | null;
  /** One list of calls per block parameter, when the call took a block. */
  blocks?: RecordedCall[][] | undefined;
}

const callSchema: z.ZodType<RecordedCall> = z.lazy(() =>
  z.strictObject({
    target: z.array(z.string().max(256)).max(16),
    method: z.string().min(1).max(256),
    args: z.array(rubyValueSchema).max(64),
    at: z.string().max(4096).nullable(),
    blocks: z.array(z.array(callSchema).max(100_000)).max(8).optional(),
  }),
);

export const recordSchema = z.strictObject({
  recorder: z.literal(1),
  configs: z.array(z.strictObject({ version: z.string().max(16), events: z.array(callSchema).max(100_000) })).max(1000),
  env: z
    .array(z.strictObject({ name: z.string().max(4096), value: z.string().max(MAX_TEXT).nullable(), used: rubyValueSchema, at: z.string().max(4096).nullable() }))
    .max(100_000),
  plugins: z.array(z.string().max(256)).max(1000),
});

export type VagrantRecord = z.infer<typeof recordSchema>;
export type EnvRead = VagrantRecord['env'][number];

/** A hash argument (Ruby keyword options), or undefined. */
export function asHash(value: RubyValue | undefined): Record<string, RubyValue> | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? value : undefined;
}

/** How a Ruby value reads in a message: short, one line. */
export function showValue(value: RubyValue | undefined): string {
  const text = JSON.stringify(value) ?? 'nil';
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}

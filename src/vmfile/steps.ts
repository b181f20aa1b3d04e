/**
 * Provisioning steps in a Vmfile: the schema of one step (part of the Vmfile schema,
 * schema.ts) and the tagged form the provisioner runs. Pure.
 */
import { z } from 'zod';

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export const runPolicySchema = z.enum(['once', 'always', 'never'], {
  error: `expected "once", "always" or "never"`,
});

const envSchema = z.record(
  z.string().regex(ENV_NAME, { error: 'environment variable names are letters, digits and _, not starting with a digit' }),
  z.string({ error: 'environment values must be strings' }),
);

const fileSpecSchema = z.strictObject({
  source: z.string().min(1, { error: 'source must not be empty' }),
  destination: z.string().startsWith('/', { error: 'destination must be an absolute path in the guest' }),
});

const ANSIBLE_GROUP = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** An Ansible host pattern: names, groups, wildcards and the :, &, ! operators; nothing a shell or ssh would read. */
const ANSIBLE_PATTERN = /^[A-Za-z0-9_.*:&!,-]+$/;

/** Values Ansible receives as extra vars (written to a JSON file, never onto a command line). */
const extraVarSchema: z.ZodType<unknown> = z.lazy(() => z.union([z.string(), z.number(), z.boolean(), z.null(), z.array(extraVarSchema), z.record(z.string(), extraVarSchema)]));

const ansibleSpecSchema = z.strictObject({
  /** Path to the playbook, relative to the Vmfile. */
  playbook: z.string().min(1, { error: 'playbook must not be empty' }),
  extraVars: z.record(z.string().regex(ENV_NAME, { error: 'extra var names are letters, digits and _, not starting with a digit' }), extraVarSchema).optional(),
  /** Inventory groups: group name -> machine names of this Vmfile. */
  groups: z.record(z.string().regex(ANSIBLE_GROUP, { error: 'group names are letters, digits and _, not starting with a digit' }), z.array(z.string())).optional(),
  /** Which hosts the play runs on (an Ansible pattern); default: the machine being provisioned. */
  limit: z.string().regex(ANSIBLE_PATTERN, { error: 'limit is an Ansible host pattern: names, groups, *, and the operators : & ! ,' }).optional(),
});

/**
 * A provisioning step is one of four kinds, told apart by which key it has: `shell`
 * (inline script), `script` (a file next to the Vmfile), `file` (an upload) or `ansible`
 * (a playbook run from the host). One flat object keeps editor completion simple; the
 * refinement reports a mix-up by field.
 */
export const stepInputSchema = z
  .strictObject({
    name: z.string().min(1).max(64).optional(),
    run: runPolicySchema.default('once'),
    shell: z.string().min(1, { error: 'shell script must not be empty' }).optional(),
    script: z.string().min(1).optional(),
    args: z.array(z.string({ error: 'script arguments must be strings' })).optional(),
    env: envSchema.optional(),
    privileged: z.boolean().optional(),
    /** false: never kept as a provisioning layer, nor any step after it (lifecycle/layers.ts). */
    cache: z.boolean({ error: 'expected true or false' }).optional(),
    file: fileSpecSchema.optional(),
    ansible: ansibleSpecSchema.optional(),
    /**
     * Files the step makes, as guest paths or globs (`results/*.csv`, `/srv/out/**`):
     * absolute, or relative to where the project directory is synced (/vmfile by default).
     * After the step, vmfile hashes them in the guest and records the digests in Vmfile.lock.
     */
    outputs: z
      .array(z.string().min(1, { error: 'an output must not be empty' }).max(1024).regex(/^[^\0\n]+$/, { error: 'an output is a guest path or glob on one line' }), { error: 'expected a list of guest paths or globs' })
      .max(64, { error: 'at most 64 outputs per step' })
      .optional(),
  })
  .superRefine((step, ctx) => {
    const kinds = (['shell', 'script', 'file', 'ansible'] as const).filter((key) => step[key] !== undefined);
    if (kinds.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        message:
          kinds.length === 0
            ? 'a step needs one of "shell" (inline script), "script" (path to a script), "file" (upload) or "ansible" (playbook)'
            : `a step has exactly one of "shell", "script", "file" or "ansible", this one has ${kinds.map((k) => `"${k}"`).join(' and ')}`,
      });
      return;
    }
    if (step.args !== undefined && step.script === undefined) {
      ctx.addIssue({ code: 'custom', path: ['args'], message: '"args" only applies to a "script" step' });
    }
    for (const kind of ['file', 'ansible'] as const) {
      if (step[kind] === undefined) continue;
      for (const key of ['env', 'privileged'] as const) {
        if (step[key] !== undefined) ctx.addIssue({ code: 'custom', path: [key], message: `"${key}" does not apply to ${kind === 'ansible' ? 'an' : 'a'} "${kind}" step` });
      }
    }
  });

/** `cache` is there only when the Vmfile says false, so that older steps hash as before. */
interface StepBase {
  id: string;
  name: string;
  run: RunPolicy;
  cache?: false;
  /** Declared outputs, absolute in the guest (config.ts resolves relative ones); there only when declared. */
  outputs?: string[];
}

export type ProvisionStep =
  | (StepBase & { kind: 'shell'; inline: string; env: Record<string, string>; privileged: boolean })
  | (StepBase & { kind: 'script'; script: string; args: string[]; env: Record<string, string>; privileged: boolean })
  | (StepBase & { kind: 'file'; source: string; destination: string })
  | (StepBase & {
      kind: 'ansible';
      playbook: string;
      extraVars: Record<string, unknown>;
      groups: Record<string, string[]>;
      limit?: string;
    });

export type RunPolicy = z.infer<typeof runPolicySchema>;

/** A step's identity in the provisioning record: its name, else its position. */
export function stepId(name: string | undefined, index: number): string {
  return name ?? `step-${index + 1}`;
}

type StepOutput = z.output<typeof stepInputSchema>;

/** Turns a parsed step into the tagged form the provisioner runs. */
export function normalizeStep(step: StepOutput, index: number): ProvisionStep {
  const id = stepId(step.name, index);
  const base = { id, name: step.name ?? `${index + 1}`, run: step.run, ...(step.cache === false ? { cache: false as const } : {}), ...(step.outputs === undefined ? {} : { outputs: step.outputs }) };
  if (step.shell !== undefined) {
    return { ...base, kind: 'shell', inline: step.shell, env: step.env ?? {}, privileged: step.privileged ?? true };
  }
  if (step.script !== undefined) {
    return {
      ...base,
      kind: 'script',
      script: step.script,
      args: step.args ?? [],
      env: step.env ?? {},
      privileged: step.privileged ?? true,
    };
  }
  if (step.file !== undefined) {
    return { ...base, kind: 'file', source: step.file.source, destination: step.file.destination };
  }
  if (step.ansible !== undefined) {
    const { playbook, extraVars, groups, limit } = step.ansible;
    return { ...base, kind: 'ansible', playbook, extraVars: extraVars ?? {}, groups: groups ?? {}, ...(limit === undefined ? {} : { limit }) };
  }
  throw new Error('unreachable: step kind checked by the schema');
}

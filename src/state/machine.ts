/** machine.json: what vmfile recorded about a created machine. */
import { readFile, writeFile, rename } from 'node:fs/promises';
import { z } from 'zod';
import { ConfigError } from '../errors.js';

export const machineStateSchema = z.object({
  name: z.string(),
  instanceId: z.string(),
  createdAt: z.string(),
  box: z.object({ name: z.string(), version: z.string(), sha256: z.string() }),
  user: z.string(),
  /** Set while running: where SSH is forwarded and which accelerator runs it. */
  sshPort: z.number().optional(),
  /** Forwarded ports as actually bound (autoCorrect may have moved them). */
  forwards: z.array(z.object({ protocol: z.enum(['tcp', 'udp']), hostIp: z.string(), hostPort: z.number(), guestPort: z.number() })).optional(),
  accel: z.enum(['kvm', 'tcg']).optional(),
  bootedAt: z.string().optional(),
  /** Set once a boot reached SSH and the guest flushed its first-boot work (keys, user) to disk. */
  initialized: z.boolean().optional(),
  /** CPUs and memory QEMU was started with: a suspended machine must resume with the same. */
  launch: z.object({ cpus: z.number(), memory: z.number() }).optional(),
  /** Synced folders as set up at the last boot (type decided then). */
  folders: z.array(z.object({ host: z.string(), guest: z.string(), readonly: z.boolean(), type: z.enum(['virtiofs', '9p', 'rsync']), tag: z.string() })).optional(),
  /** Set while the machine's memory is saved in its disk (vmfile suspend) and QEMU is stopped. */
  suspendedAt: z.string().optional(),
});

export type MachineState = z.infer<typeof machineStateSchema>;

export async function readMachineState(path: string): Promise<MachineState | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
  const parsed = machineStateSchema.safeParse(JSON.parse(text));
  if (!parsed.success) throw new ConfigError(`machine state ${path} is damaged`, { hint: 'vmfile destroy removes the machine; the box is kept' });
  return parsed.data;
}

/** Written to a temporary file and renamed, so a crash never leaves half a file. */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const temporary = `${path}.tmp-${process.pid}`;
  await writeFile(temporary, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
  await rename(temporary, path);
}

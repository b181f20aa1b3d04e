/**
 * vmfile validate: everything vmup would refuse before creating anything, without
 * booting: the Vmfile itself (already parsed), each machine against the host that would
 * run it, provisioning files, folders, taken host ports, broken machines.
 */
import type { ServiceContext } from '../instance/context.js';
import { inspectIn } from '../instance/inspect.js';
import { preflight } from '../lifecycle/up.js';
import { writeEditorTsconfig } from '../project/editor-types.js';
import type { MachineConfig, Project } from '../vmfile/config.js';

export async function validate(options: { project: Project }, context: Pick<ServiceContext, 'env'>): Promise<MachineConfig[]> {
  const machines = await Promise.all(options.project.machines.map(async (machine) => ({ machine, instance: await inspectIn(options.project, machine.name) })));
  await preflight(options.project, machines, context.env);
  // Editor support, refreshed for this copy of vmfile (a fresh clone's first command is
  // often this one). Not being able to write it leaves the Vmfile no less valid.
  await writeEditorTsconfig(options.project.vmfilePath).catch(() => undefined);
  return options.project.machines;
}

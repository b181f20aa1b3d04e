/** Picking a Vmfile's machines by name, the same way for every command. */
import { UserError } from '../errors.js';
import type { MachineConfig, Project } from '../vmfile/config.js';

/** The named machines, or all of them; an unknown name is an error that lists the real ones. */
export function selectMachines(project: Project, names: readonly string[] = []): MachineConfig[] {
  if (names.length === 0) return project.machines;
  const known = new Map(project.machines.map((machine) => [machine.name, machine]));
  return names.map((name) => {
    const machine = known.get(name);
    if (machine === undefined) {
      throw new UserError(`no machine named "${name}" in ${project.vmfilePath}`, {
        hint: `machines in this Vmfile: ${[...known.keys()].join(', ')}`,
      });
    }
    return machine;
  });
}

/**
 * The one machine a command acts on: the named one, else the only one, else (where
 * `usePrimary`, as for vmssh) the primary. Several machines and no name is refused,
 * never resolved silently to the first.
 */
export function selectOne(project: Project, name: string | undefined, options: { command: string; usePrimary: boolean }): MachineConfig {
  if (name !== undefined) return selectMachines(project, [name])[0] as MachineConfig;
  const primary = options.usePrimary ? project.machines.find((machine) => machine.primary) : undefined;
  if (primary !== undefined) return primary;
  const [only, ...others] = project.machines;
  if (only === undefined) throw new UserError(`${project.vmfilePath} defines no machine`);
  if (others.length > 0) {
    throw new UserError(`this Vmfile defines ${project.machines.length} machines; say which one: ${project.machines.map((m) => m.name).join(', ')}`, {
      hint: `for example: ${options.command.replace('MACHINE', only.name)}`,
    });
  }
  return only;
}

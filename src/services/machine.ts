/**
 * What every machine service shares: picking machines by name, and telling whether a
 * machine is not created, running or halted from what is on disk and in /proc.
 */
import { UserError } from '../errors.js';
import { runningPid } from '../qemu/process.js';
import { machinePaths, type MachinePaths } from '../state/layout.js';
import { readMachineState, type MachineState } from '../state/machine.js';
import type { Reporter } from '../ui/reporter.js';
import type { MachineConfig, Project } from '../vmfile/config.js';
import { pathExists } from '../state/exists.js';

/** What services need besides their own options. */
export interface ServiceContext {
  /** vmfile's home: the box store. */
  home: string;
  reporter: Reporter;
  env: NodeJS.ProcessEnv;
  signal?: AbortSignal;
}

export type MachineStatusName = 'not created' | 'running' | 'halted' | 'suspended';

export interface MachineStatus {
  name: string;
  status: MachineStatusName;
  paths: MachinePaths;
  state?: MachineState;
  pid?: number;
}

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

export async function machineStatus(projectDir: string, name: string): Promise<MachineStatus> {
  const paths = machinePaths(projectDir, name);
  const state = await readMachineState(paths.state);
  const created = state !== undefined && (await pathExists(paths.overlay));
  if (!created) return { name, status: 'not created', paths };
  const pid = await runningPid(paths.pidFile, paths.overlay);
  if (pid !== undefined) return { name, status: 'running', paths, state, pid };
  return { name, status: state.suspendedAt === undefined ? 'halted' : 'suspended', paths, state };
}

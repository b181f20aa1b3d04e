/** `vmfile outputs`: the digests of the steps' declared outputs, as Vmfile.lock records them from the last run. */
import { selectMachines } from '../instance/select.js';
import { readLockFile } from '../store/lockfile.js';
import type { Project } from '../vmfile/config.js';

export interface OutputEntry {
  machine: string;
  step: string;
  /** A declared pattern no file was recorded for yet (the step has not run since it was declared). */
  pattern?: string;
  path?: string;
  sha256?: string;
}

export async function outputs(options: { project: Project; machines?: readonly string[] }): Promise<OutputEntry[]> {
  const lock = await readLockFile(options.project.dir);
  const entries: OutputEntry[] = [];
  for (const machine of selectMachines(options.project, options.machines)) {
    const recorded = lock.machines[machine.name]?.outputs ?? {};
    for (const step of machine.provision) {
      if (step.outputs === undefined) continue;
      const files = Object.entries(recorded[step.name] ?? {});
      if (files.length === 0) for (const pattern of step.outputs) entries.push({ machine: machine.name, step: step.name, pattern });
      for (const [path, sha256] of files) entries.push({ machine: machine.name, step: step.name, path, sha256 });
    }
  }
  return entries;
}

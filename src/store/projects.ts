/**
 * Which projects on this host use vmfile, for `vmfile global-status` (their machines)
 * and `vmfile box prune` (the boxes their machines and Vmfile.lock files use): one small
 * file per project under VMFILE_HOME/projects, written by vmup and by `vmfile lock
 * --update`. One file each (not one shared list) so that vmups of different projects
 * never write the same file. The index only points at projects; what their machines are
 * doing is read from the projects themselves, and an entry whose project has neither
 * machines nor a Vmfile.lock any more is pruned. An entry that is not a small regular
 * file (a FIFO would hang the reader) counts as damaged.
 */
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from './json.js';
import { pathExists } from './exists.js';
import { readRegularFile } from './regular-file.js';
import { lockFilePath, machinesDir, projectIndexFile, projectsIndexDir } from './layout.js';

const entrySchema = z.strictObject({ project: z.string().startsWith('/'), vmfile: z.string().startsWith('/') });

export type ProjectEntry = z.infer<typeof entrySchema>;

export async function recordProject(home: string, entry: ProjectEntry): Promise<void> {
  await mkdir(projectsIndexDir(home), { recursive: true, mode: 0o700 });
  await writeFileAtomic(projectIndexFile(home, entry.project), `${JSON.stringify(entry, null, 2)}\n`, { mode: 0o600, skipUnchanged: true });
}

/**
 * The projects that still have machines or a Vmfile.lock, in path order; entries whose
 * project (or all it had) is gone, or that are not an index entry at all, are removed
 * and counted.
 */
export async function listProjects(home: string): Promise<{ projects: ProjectEntry[]; pruned: number }> {
  const dir = projectsIndexDir(home);
  const names = await readdir(dir).catch(() => [] as string[]);
  const projects: ProjectEntry[] = [];
  let pruned = 0;
  for (const name of names.filter((file) => file.endsWith('.json'))) {
    const path = join(dir, name);
    const parsed = entrySchema.safeParse(await readRegularFile(path).then((text) => JSON.parse(text) as unknown).catch(() => undefined));
    const machines = parsed.success ? await readdir(machinesDir(parsed.data.project)).catch(() => [] as string[]) : [];
    const locked = parsed.success && (await pathExists(lockFilePath(parsed.data.project)));
    if (!parsed.success || path !== projectIndexFile(home, parsed.data.project) || (machines.length === 0 && !locked)) {
      // A directory in its place is left alone (and not counted): it is nobody's entry.
      if (await rm(path, { force: true }).then(() => true, () => false)) pruned++;
      continue;
    }
    projects.push(parsed.data);
  }
  return { projects: projects.sort((a, b) => a.project.localeCompare(b.project)), pruned };
}

/** The names of a project's machines: the directories under its .vmfile/machines, sorted; none when it has none. */
export async function projectMachineNames(project: string): Promise<string[]> {
  const entries = await readdir(machinesDir(project), { withFileTypes: true }).catch(() => []);
  return entries.filter((entry) => entry.isDirectory()).map((entry) => entry.name).sort();
}

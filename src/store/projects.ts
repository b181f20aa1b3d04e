/**
 * Which projects on this host use vmfile, and what their machines stand on: one small
 * file per project under VMFILE_HOME/projects, written by vmup, destroy and `vmfile lock
 * --update`, read by `global-status` (their machines), `box prune` and `cache prune`
 * (what is in use). One file each (not one shared list) so that vmups of different
 * projects never write the same file. An entry that is not a small regular file (a FIFO
 * would hang the reader) counts as damaged.
 *
 * In use must mean "some disk on this host stands on it, or may". A project's directory
 * can be renamed, moved, on an unmounted drive or unreadable, and its machines' disks
 * still stand on their warm states and boxes by absolute path. So each entry also keeps
 * what its machines stand on, registered before a machine's disk is made (under the
 * uses lock, which prune holds while it decides), and the boxes its Vmfile.lock pins;
 * prune keeps all of it for a project it cannot read. An entry is dropped only when its
 * project can be read and has no machine and no lock left, or when the user says the
 * project is gone (`global-status --prune`).
 */
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from './json.js';
import { pathExists } from './exists.js';
import { readRegularFile } from './regular-file.js';
import { lockFilePath, machinesDir, projectIndexFile, projectsIndexDir } from './layout.js';
import { withLock } from './lock.js';

const boxRef = z.strictObject({ name: z.string(), version: z.string() });
const KEY = /^[0-9a-f]{32}$/;

const entrySchema = z.strictObject({
  project: z.string().startsWith('/'),
  vmfile: z.string().startsWith('/'),
  /** What each machine's disk stands on: its box, and the warm states under it (the one it was made over first). */
  machines: z.record(z.string(), z.strictObject({ box: boxRef, states: z.array(z.string().regex(KEY)) })).optional(),
  /** The boxes its Vmfile.lock pins, as last written here. */
  locked: z.array(boxRef).optional(),
});

export type ProjectEntry = z.infer<typeof entrySchema>;
export type MachineUse = NonNullable<ProjectEntry['machines']>[string];

export interface ListedProject extends ProjectEntry {
  /** Whether the project's directory could be read now; an unreadable one keeps what it registered. */
  readable: boolean;
}

/** Held while what machines stand on is registered, and while prune decides what nothing does. */
export async function withUsesLock<T>(home: string, operation: string, fn: () => Promise<T>): Promise<T> {
  await mkdir(projectsIndexDir(home), { recursive: true, mode: 0o700 });
  return withLock(join(projectsIndexDir(home), 'uses.lock'), 'the record of what machines stand on', operation, fn, { waitMs: 60_000 });
}

/**
 * Records the project, with what its machines stand on so far (none yet for a new one):
 * an entry without `machines` was written by a vmfile that did not keep it, and prune
 * must then assume its machines may stand on anything.
 */
export async function recordProject(home: string, entry: { project: string; vmfile: string }): Promise<void> {
  await withUsesLock(home, 'record a project', () => updateEntry(home, entry, (current) => ({ ...current, ...entry, machines: current?.machines ?? {} })));
}

/**
 * Registers what a machine's disk will stand on, before it is made; `check` runs under
 * the lock first (that what it stands on is still there: a prune may have just removed
 * it). Call it with nothing else held that prune could wait on.
 */
export async function registerMachineUse(home: string, entry: { project: string; vmfile: string }, machine: string, use: MachineUse, check: () => Promise<void> = async () => {}): Promise<void> {
  await withUsesLock(home, 'register a machine', async () => {
    await check();
    await updateEntry(home, entry, (current) => ({ ...current, ...entry, machines: { ...current?.machines, [machine]: use } }));
  });
}

/** Forgets a destroyed machine's registration. */
export async function forgetMachineUse(home: string, project: string, machine: string): Promise<void> {
  await withUsesLock(home, 'forget a machine', async () => {
    const current = await readEntry(home, project);
    if (current?.machines?.[machine] === undefined) return;
    const { [machine]: _gone, ...machines } = current.machines;
    await updateEntry(home, current, () => ({ ...current, machines }));
  });
}

/** Records the boxes the project's Vmfile.lock pins now. */
export async function recordLockedBoxes(home: string, entry: { project: string; vmfile: string }, boxes: readonly { name: string; version: string }[]): Promise<void> {
  // Several machines on one box version are one entry.
  const unique = [...new Map(boxes.map((box) => [`${box.name}\0${box.version}`, { name: box.name, version: box.version }])).values()];
  await withUsesLock(home, 'record a Vmfile.lock', () => updateEntry(home, entry, (current) => ({ ...current, ...entry, locked: unique })));
}

async function updateEntry(home: string, entry: { project: string }, change: (current: ProjectEntry | undefined) => ProjectEntry): Promise<void> {
  await mkdir(projectsIndexDir(home), { recursive: true, mode: 0o700 });
  const current = await readEntry(home, entry.project);
  // An entry this vmfile starts keeps what its machines stand on from the first write.
  const next = { ...(current === undefined ? { machines: {} } : {}), ...change(current) };
  await writeFileAtomic(projectIndexFile(home, entry.project), `${JSON.stringify(next, null, 2)}\n`, { mode: 0o600, skipUnchanged: true });
}

async function readEntry(home: string, project: string): Promise<ProjectEntry | undefined> {
  const parsed = entrySchema.safeParse(await readRegularFile(projectIndexFile(home, project)).then((text) => JSON.parse(text) as unknown).catch(() => undefined));
  return parsed.success && parsed.data.project === project ? parsed.data : undefined;
}

/**
 * The projects in the index, in path order, each saying whether it can be read now.
 * Entries that are not an index entry at all, and those of projects that can be read
 * and have nothing left (no machine on disk or registered, no Vmfile.lock), are removed
 * and counted; with `forgetMissing`, so are those whose directory no longer exists.
 * Removals are decided again under the uses lock (taken here unless the caller holds
 * it: `locked`), so a machine registered meanwhile is never forgotten.
 */
export async function listProjects(home: string, options: { forgetMissing?: boolean; locked?: boolean } = {}): Promise<{ projects: ListedProject[]; pruned: number }> {
  const dir = projectsIndexDir(home);
  const names = await readdir(dir).catch(() => [] as string[]);
  const projects: ListedProject[] = [];
  const doomed: string[] = [];
  for (const name of names.filter((file) => file.endsWith('.json'))) {
    const path = join(dir, name);
    const listed = await examine(home, path, options);
    if (listed === undefined) doomed.push(path);
    else projects.push(listed);
  }
  let pruned = 0;
  const drop = async () => {
    for (const path of doomed) {
      // Looked at again: a vmup may have registered a machine since.
      if ((await examine(home, path, options)) !== undefined) continue;
      // A directory in its place is left alone (and not counted): it is nobody's entry.
      if (await rm(path, { force: true }).then(() => true, () => false)) pruned++;
    }
  };
  if (doomed.length > 0) await (options.locked === true ? drop() : withUsesLock(home, 'tidy the project index', drop));
  return { projects: projects.sort((a, b) => a.project.localeCompare(b.project)), pruned };
}

/** The index entry at `path` as listed, or undefined when it should go. */
async function examine(home: string, path: string, options: { forgetMissing?: boolean }): Promise<ListedProject | undefined> {
  const parsed = entrySchema.safeParse(await readRegularFile(path).then((text) => JSON.parse(text) as unknown).catch(() => undefined));
  if (!parsed.success || path !== projectIndexFile(home, parsed.data.project)) return undefined;
  const entry = parsed.data;
  const present = await stat(entry.project).then((info) => info.isDirectory(), (error: NodeJS.ErrnoException) => (error.code === 'ENOENT' || error.code === 'ENOTDIR' ? false : undefined));
  const machines = present === true ? await readdir(machinesDir(entry.project)).then((found) => found, (error: NodeJS.ErrnoException) => (error.code === 'ENOENT' ? [] : undefined)) : undefined;
  const readable = machines !== undefined;
  const registered = Object.keys(entry.machines ?? {}).length > 0;
  if (readable && machines.length === 0 && !registered && !(await pathExists(lockFilePath(entry.project)))) return undefined;
  if (present === false && options.forgetMissing === true) return undefined;
  return { ...entry, readable };
}

/** The names of a project's machines: the directories under its .vmfile/machines, sorted; none when it has none. */
export async function projectMachineNames(project: string): Promise<string[]> {
  const entries = await readdir(machinesDir(project), { withFileTypes: true }).catch(() => []);
  return entries.filter((entry) => entry.isDirectory()).map((entry) => entry.name).sort();
}

/**
 * Writing a study bundle (format.ts): which project files it holds, and the file itself.
 *
 * The project files are those a replay needs and the user put in the project: the
 * Vmfile and the local modules it loads, Vmfile.lock, the files the steps read (scripts,
 * uploads, playbooks), and what each machine's folders inside the project directory
 * sync, chosen by the same filters as the sync itself (so what git ignores stays out,
 * as in the guest). Never the project's .vmfile/ (keys, records), nor the bundle being
 * written. A link a step reads is followed, as the step follows it; a link in a folder
 * is left out and named, as rsync copies it as a link. A folder outside the project
 * directory cannot travel, and is named too.
 */
import { copyFile, lstat, mkdir, stat, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { writeArchive } from '../box/archive.js';
import { writeDebBundle } from '../box/deb-bundle.js';
import { planFolders } from '../folders/plan.js';
import { rsyncFilterArgs } from '../folders/rsync-filter.js';
import { listSyncedFiles } from '../folders/without-rsync.js';
import { uploadEntries } from '../ssh/upload-tree.js';
import { UserError } from '../errors.js';
import { lockFilePath } from '../store/layout.js';
import { printable } from '../vmfile/box-metadata.js';
import type { Project } from '../vmfile/config.js';
import type { DebRef } from '../vmfile/deb-ref.js';
import { PROJECT_PREFIX, projectPathProblem, STUDY_MANIFEST, STUDY_PACKAGES, type StudyManifest } from './format.js';

/** Fixed member times: the same project and lock make the same bundle. */
const STUDY_MTIME = 1_700_000_000;

export interface ProjectFiles {
  /** Relative to the project directory, sorted. */
  files: string[];
  /** Folders outside the project directory, as their host paths. */
  leftOut: string[];
  /** Links and other non-regular files the folders hold, relative. */
  skipped: string[];
}

/** The project files a bundle of `project` holds; `excluded` are absolute paths never taken (the bundle itself). `scratch` is private. */
export async function projectFiles(project: Project, excluded: readonly string[], scratch: string): Promise<ProjectFiles> {
  const root = project.dir;
  const inside = (path: string): string | undefined => {
    const rel = relative(root, path);
    return rel === '' || rel.startsWith('..') || isAbsolute(rel) ? undefined : rel;
  };
  const outside: string[] = [];
  /** Relative path -> whether a link there is followed (what the Vmfile and its steps read) or left out (a folder's). */
  const wanted = new Map<string, boolean>();
  const need = (path: string, what: string): void => {
    const rel = inside(path);
    if (rel === undefined) outside.push(`${what} ${path}`);
    else wanted.set(rel, true);
  };
  for (const file of [project.vmfilePath, ...project.loadedFiles]) need(file, 'the Vmfile loads');
  need(lockFilePath(root), 'the lock');
  for (const step of project.machines.flatMap((machine) => machine.provision)) {
    if (step.kind === 'script') need(resolve(root, step.script), `step "${step.name}" runs`);
    if (step.kind === 'ansible') need(resolve(root, step.playbook), `step "${step.name}" plays`);
    if (step.kind === 'file') for await (const entry of uploadEntries(resolve(root, step.source))) if (entry.kind === 'file') need(entry.local, `step "${step.name}" uploads`);
  }
  if (outside.length > 0) {
    throw new UserError(`${project.vmfilePath}: a bundle carries only the project's own files, and these are outside ${root}:\n${outside.map((line) => `  - ${line}`).join('\n')}`, {
      hint: 'move them into the project directory and refer to them from there',
    });
  }
  const leftOut: string[] = [];
  const folders = project.machines.flatMap((machine) => planFolders(machine.folders, { virtiofsd: false }));
  for (const [index, folder] of folders.entries()) {
    const base = folder.host === root ? '' : inside(folder.host);
    if (base === undefined) {
      if (!leftOut.includes(folder.host)) leftOut.push(folder.host);
      continue;
    }
    const filters = await rsyncFilterArgs(folder, join(scratch, `excludes-${index}`));
    for (const name of await listSyncedFiles(folder.host, filters, scratch, `bundle ${root}`)) {
      const rel = base === '' ? name : `${base}/${name}`;
      if (!name.endsWith('/') && !wanted.has(rel)) wanted.set(rel, false);
    }
  }
  const skip = new Set(excluded.map((path) => inside(path)).filter((rel) => rel !== undefined));
  const files: string[] = [];
  const skipped: string[] = [];
  for (const [rel, follow] of [...wanted].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (skip.has(rel)) continue;
    const info = await (follow ? stat : lstat)(join(root, rel)).catch(() => undefined);
    if (info === undefined && rel === relative(root, lockFilePath(root))) {
      throw new UserError(`${lockFilePath(root)} does not exist: a study is replayed from what its lock records`, { hint: 'vmup first (it writes the lock, with the steps\' packages and outputs), then vmfile bundle' });
    }
    if (info?.isFile() !== true) {
      skipped.push(rel);
      continue;
    }
    const problem = projectPathProblem(rel);
    if (problem !== undefined) throw new UserError(`${JSON.stringify(printable(join(root, rel), 300))} ${problem}, so a bundle cannot carry it`, { hint: 'rename it, or leave it out of the folder (exclude in the Vmfile, or .gitignore)' });
    files.push(rel);
  }
  return { files, leftOut, skipped };
}

/**
 * Writes the bundle to `output` from `staging` (private, empty, on the store's file
 * system): the project files copied, the packages from the store, study.json. Whole or
 * not at all.
 */
export async function writeStudy(options: { home: string; project: Project; files: ProjectFiles; debs: readonly DebRef[]; output: string; staging: string }): Promise<StudyManifest> {
  const { project, files, staging } = options;
  await mkdir(staging, { recursive: true, mode: 0o700 });
  for (const rel of files.files) {
    const to = join(staging, PROJECT_PREFIX, rel);
    await mkdir(dirname(to), { recursive: true, mode: 0o700 });
    await copyFile(join(project.dir, rel), to);
  }
  const packagesDir = join(staging, 'packages');
  await mkdir(packagesDir, { mode: 0o700 });
  const packed = await writeDebBundle(options.home, options.debs, join(staging, STUDY_PACKAGES), packagesDir, lockFilePath(project.dir));
  const manifest: StudyManifest = {
    format: 'vmfile-study',
    version: 1,
    vmfile: relative(project.dir, project.vmfilePath),
    files: files.files,
    machines: project.machines.map((machine) => machine.name),
    packages: packed.packages,
    ...(files.leftOut.length === 0 ? {} : { leftOut: files.leftOut }),
  };
  await writeFile(join(staging, STUDY_MANIFEST), `${JSON.stringify(manifest, null, 1)}\n`);
  // Scripts keep their executable bit (X); nothing else of the host's modes travels.
  await writeArchive(staging, [STUDY_MANIFEST, STUDY_PACKAGES, ...files.files.map((rel) => `${PROJECT_PREFIX}${rel}`)], options.output, { mtime: STUDY_MTIME, mode: 'u=rwX,go=rX' });
  return manifest;
}

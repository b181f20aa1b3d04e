/**
 * Unpacking a study bundle from outside, trusting nothing in it (format.ts has the
 * rules). The listing is checked before anything is written, what the members add up
 * to must fit the room there is, tar then extracts just the listed files, without
 * owners, permissions beyond the executable bit, or extended attributes, and the
 * unpacked tree is walked again with lstat: an archive changed between the two reads,
 * or a link, is caught. study.json must parse and name exactly the project files there
 * are, the Vmfile and Vmfile.lock among them.
 */
import { lstat, mkdir, readdir, readFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { describeSpace, MAX_BOX_BYTES, spaceBudget, statfsSpace, type SpaceProbe } from '../box/space.js';
import { listTar, parseUntrustedJson, refusedArchive } from '../box/untrusted-archive.js';
import { run } from '../exec.js';
import { UserError } from '../errors.js';
import { LOCK_FILE_NAME } from '../vmfile/names.js';
import { printable } from '../vmfile/box-metadata.js';
import { formatIssues } from '../vmfile/config.js';
import { formatSize } from '../vmfile/size.js';
import { classifyMember, MAX_STUDY_MEMBERS, PROJECT_PREFIX, STUDY_MANIFEST, STUDY_PACKAGES, studyManifestSchema, type StudyManifest } from './format.js';

export interface UnpackedStudy {
  manifest: StudyManifest;
  /** The package bundle, for importDebBundle. */
  packages: string;
  /** The project directory as unpacked (its files are the manifest's). */
  project: string;
}

/** Unpacks the bundle `file` into the empty directory `dir`, or throws naming every problem. `freeSpace` reads the file system (tests stand in a small one). */
export async function unpackStudy(file: string, dir: string, freeSpace: SpaceProbe = statfsSpace): Promise<UnpackedStudy> {
  const refuse = (problems: readonly string[], outcome: string): UserError =>
    refusedArchive(file, 'a study bundle', problems, outcome, 'make it again with vmfile bundle on the host that ran the study, and copy it over whole');
  const listed = await listTar(file, `read the study bundle ${file}`);
  if ('error' in listed) throw refuse([`tar cannot read it: ${listed.error}`], 'Nothing was unpacked.');
  const { members, unreadable } = listed;
  const problems = unreadable.slice(0, 3).map((line) => `tar lists ${JSON.stringify(printable(line, 200))}, which is not a file`);
  const files: string[] = [];
  const seen = new Set<string>();
  let total = 0;
  for (const member of members) {
    const place = classifyMember(member);
    if ('skip' in place) continue;
    if ('problem' in place) {
      problems.push(place.problem);
      continue;
    }
    const key = place.kind === 'project' ? `${PROJECT_PREFIX}${place.path}` : place.path;
    if (seen.has(key)) problems.push(`${JSON.stringify(printable(member.name, 200))} appears twice`);
    seen.add(key);
    if (member.type === 'file') files.push(member.name);
    total += member.size;
  }
  if (members.length > MAX_STUDY_MEMBERS) problems.push(`it has ${members.length} members, more than ${MAX_STUDY_MEMBERS}`);
  for (const needed of [STUDY_MANIFEST, STUDY_PACKAGES]) if (!seen.has(needed)) problems.push(`it has no ${needed}`);
  const budget = await spaceBudget(dirname(dir), MAX_BOX_BYTES, freeSpace);
  if (total > budget.bytes) problems.push(`its members add up to ${formatSize(total)}, more than ${budget.bytes < MAX_BOX_BYTES ? `there is room for: ${describeSpace(budget)}` : `the ${formatSize(MAX_BOX_BYTES)} a bundle may have`}`);
  if (problems.length > 0) throw refuse(problems, 'Nothing was unpacked.');

  await mkdir(dir, { recursive: true, mode: 0o700 });
  await run('tar', ['--extract', `--file=${file}`, `--directory=${dir}`, '--no-same-owner', '--no-same-permissions', '--no-overwrite-dir', '--no-xattrs', '--no-acls', '--no-selinux', '--', ...files], {
    purpose: `unpack the study bundle ${file}`,
  });
  const unpacked = await walk(dir, dir, problems);
  const expected = new Set(files.map((name) => name.replace(/^\.\//, '')));
  for (const path of unpacked) if (!expected.has(path)) problems.push(`${JSON.stringify(printable(path, 200))} was unpacked but not listed`);
  if (problems.length > 0) throw refuse(problems, 'What was unpacked is removed; nothing was used.');

  const parsed = studyManifestSchema.safeParse(parseUntrustedJson(await readFile(join(dir, STUDY_MANIFEST), 'utf8')));
  if (!parsed.success) throw refuse(formatIssues(parsed.error.issues).map((line) => `${STUDY_MANIFEST}: ${line}`), 'Nothing was used.');
  const manifest = parsed.data;
  const projectFiles = new Set(unpacked.filter((path) => path.startsWith(PROJECT_PREFIX)).map((path) => path.slice(PROJECT_PREFIX.length)));
  for (const path of manifest.files) if (!projectFiles.has(path)) problems.push(`${STUDY_MANIFEST} names ${JSON.stringify(path)}, which the bundle does not hold`);
  for (const path of projectFiles) if (!manifest.files.includes(path)) problems.push(`${JSON.stringify(printable(path, 200))} is in the bundle but not in ${STUDY_MANIFEST}`);
  for (const needed of [manifest.vmfile, LOCK_FILE_NAME]) if (!projectFiles.has(needed)) problems.push(`it holds no ${needed}, which a study needs`);
  if (problems.length > 0) throw refuse(problems, 'Nothing was used.');
  return { manifest, packages: join(dir, STUDY_PACKAGES), project: join(dir, PROJECT_PREFIX) };
}

/** The regular files under `dir`, relative to `root`; anything else is a problem (lstat: links are never followed). */
async function walk(root: string, dir: string, problems: string[]): Promise<string[]> {
  const found: string[] = [];
  for (const name of await readdir(dir)) {
    const path = join(dir, name);
    const info = await lstat(path);
    const shown = JSON.stringify(printable(relative(root, path), 200));
    if ((info.mode & 0o7000) !== 0) problems.push(`${shown} was unpacked with a setuid, setgid or sticky bit`);
    if (info.isDirectory()) found.push(...(await walk(root, path, problems)));
    else if (!info.isFile()) problems.push(`${shown} was unpacked as something other than a regular file`);
    else if (info.nlink !== 1) problems.push(`${shown} was unpacked as a hard link`);
    else found.push(relative(root, path));
  }
  return found;
}

/**
 * A study bundle (`vmfile bundle`, `vmfile reproduce`): one uncompressed tar holding
 * - study.json, what the bundle says it holds;
 * - packages.tar, the package bundle of every package the lock pins (box/deb-bundle.ts);
 * - project/..., the project's files: the Vmfile and what it loads, Vmfile.lock, the files
 *   the steps read and the files the machines' project folders sync.
 *
 * The rules a member must meet to be unpacked are here, pure: only regular files (and
 * the directories above them under project/), relative names of plain printable
 * characters with no "." or ".." part, nothing in a .vmfile directory (a project's
 * private state: a bundle never brings one), no special bits, each name once, bounded
 * counts and sizes. A name tar lists with an escape (a backslash) is refused rather than
 * decoded.
 */
import { z } from 'zod';
import type { ArchiveMember } from '../box/untrusted-archive.js';
import { printable } from '../vmfile/box-metadata.js';
import { PROJECT_STATE_DIR } from '../store/layout.js';

export const STUDY_MANIFEST = 'study.json';
export const STUDY_PACKAGES = 'packages.tar';
export const PROJECT_PREFIX = 'project/';
export const MAX_STUDY_MEMBERS = 100_000;
const MAX_MANIFEST_BYTES = 4 * 1024 ** 2;
const MAX_PATH = 1024;
/** A part of a project path: printable, no "/" or "\", not "." or "..". */
const PART = /^[^\0-\x1f\x7f/\\]{1,255}$/;

/** A path relative to the project directory, as study.json and the archive name it. Pure. */
export function projectPathProblem(path: string): string | undefined {
  if (path.length > MAX_PATH) return `is longer than ${MAX_PATH} characters`;
  const parts = path.split('/');
  if (parts.some((part) => part === '' || part === '.' || part === '..')) return 'is not a plain relative path (an empty, "." or ".." part)';
  if (parts.some((part) => !PART.test(part))) return 'has a control character or a backslash in its name';
  if (parts.includes(PROJECT_STATE_DIR)) return `is inside a ${PROJECT_STATE_DIR} directory, a project's private state, which a bundle never carries`;
  return undefined;
}

const projectPath = z.string().superRefine((path, ctx) => {
  const problem = projectPathProblem(path);
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: `${JSON.stringify(printable(path, 200))} ${problem}` });
});

export const studyManifestSchema = z.strictObject({
  format: z.literal('vmfile-study', { error: 'expected "vmfile-study"' }),
  version: z.literal(1, { error: 'this bundle was written by a newer vmfile (version is not 1)' }),
  /** The Vmfile, relative to the project directory. */
  vmfile: projectPath,
  /** Every project file the bundle holds, sorted. */
  files: z.array(projectPath).max(MAX_STUDY_MEMBERS),
  machines: z.array(z.string().max(64)).max(1000),
  packages: z.number().int().min(0),
  /** Project folders whose files were not bundled (outside the project directory), as the Vmfile names them. */
  leftOut: z.array(z.string().max(4096)).max(1000).optional(),
});

export type StudyManifest = z.infer<typeof studyManifestSchema>;

/** Where a listed member goes: the manifest, the packages, or a project file or directory; with `problem` when it may not be unpacked. Pure. */
export function classifyMember(member: ArchiveMember): { kind: 'manifest' | 'packages' | 'project'; path: string } | { problem: string } | { skip: true } {
  const shown = JSON.stringify(printable(member.name, 200));
  const name = member.name.replace(/^\.\//, '');
  if (member.type === 'directory' && (name === '' || name === '.' || `${name.replace(/\/$/, '')}/` === PROJECT_PREFIX)) return { skip: true };
  if (member.type !== 'file' && member.type !== 'directory') return { problem: `${shown} is a ${member.type === 'other' ? 'member of an unknown type' : member.type}, not a regular file` };
  if (/[sStT]/.test(member.permissions)) return { problem: `${shown} has a setuid, setgid or sticky bit` };
  if (member.type === 'file' && name === STUDY_MANIFEST) return member.size > MAX_MANIFEST_BYTES ? { problem: `${shown} is ${member.size} bytes, more than a ${STUDY_MANIFEST} may have` } : { kind: 'manifest', path: name };
  if (member.type === 'file' && name === STUDY_PACKAGES) return { kind: 'packages', path: name };
  if (!name.startsWith(PROJECT_PREFIX)) return { problem: `${shown} is neither ${STUDY_MANIFEST}, ${STUDY_PACKAGES} nor under ${PROJECT_PREFIX}` };
  const rest = name.slice(PROJECT_PREFIX.length);
  const path = member.type === 'directory' ? rest.replace(/\/$/, '') : rest;
  const problem = projectPathProblem(path);
  if (problem !== undefined) return { problem: `${shown} ${problem}` };
  return { kind: 'project', path };
}

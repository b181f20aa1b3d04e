/**
 * A package bundle: the .deb files a project's Vmfile.lock names, in one file that
 * carries them to another host (`vmfile lock export`, `vmfile lock import`), so that a
 * host without a network rebuilds the locked box.
 *
 * The file is an uncompressed tar (the packages are compressed already): packages.json
 * first, then each package as <sha256>.deb. Owners and times are fixed, so the same
 * lock exports the same file.
 *
 * Importing trusts nothing in it. The listing is read before anything is written: only
 * regular files at the top, named packages.json or <64 hex digits>.deb, none twice, each
 * of bounded size. packages.json must parse as a list of packages, each file must hash
 * to its name and to its entry, and the names of the refused ones are all given. Nothing
 * is added to the store unless every file checks out.
 */
import { lstat, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { run } from '../exec.js';
import { UserError } from '../errors.js';
import { printable } from '../vmfile/box-metadata.js';
import { formatIssues } from '../vmfile/config.js';
import { debLabel, debRefSchema, type DebRef } from '../vmfile/deb-ref.js';
import { writeArchive } from './archive.js';
import { linkOrCopy, MAX_DEB_BYTES, storedDeb, storeDeb } from './deb-store.js';
import { listTar, parseUntrustedJson, refusedArchive } from './untrusted-archive.js';
import { sha256File } from '../store/digest.js';

const MANIFEST = 'packages.json';
const FORMAT = 'vmfile-packages';
const MAX_MANIFEST_BYTES = 32 * 1024 ** 2;
const MAX_MEMBERS = 100_000;
const DEB_MEMBER = /^(\.\/)?([0-9a-f]{64})\.deb$/;
const BUNDLE_MTIME = 1_700_000_000;

const manifestSchema = z.strictObject({
  format: z.literal(FORMAT, { error: `expected "${FORMAT}"` }),
  version: z.literal(1, { error: 'this bundle was written by a newer vmfile (version is not 1)' }),
  packages: z.array(debRefSchema).max(MAX_MEMBERS),
});

/**
 * Writes the bundle of `debs` (taken from the package store, each checked) to `output`,
 * whole or not at all. Throws listing every package the store lacks.
 */
export async function writeDebBundle(home: string, debs: readonly DebRef[], output: string, staging: string, label: string): Promise<{ packages: number }> {
  const unique = [...new Map(debs.map((deb) => [deb.sha256, deb])).values()].sort((a, b) => (a.sha256 < b.sha256 ? -1 : 1));
  const problems: string[] = [];
  const members: string[] = [MANIFEST];
  for (const deb of unique) {
    const stored = await storedDeb(home, deb);
    if ('path' in stored) {
      const staged = join(staging, `${deb.sha256}.deb`);
      await linkOrCopy(stored.path, staged);
      members.push(`${deb.sha256}.deb`);
    } else problems.push('tampered' in stored ? stored.tampered : `${debLabel(deb)} (sha256 ${deb.sha256}) is not in the package store`);
  }
  if (problems.length > 0) {
    throw new UserError(`${label}: ${problems.length} locked package${problems.length === 1 ? '' : 's'} cannot be exported, so nothing was written:\n${problems.map((line) => `  - ${line}`).join('\n')}`, {
      hint: 'export from the host that built the locked box (its package store has every file), or run vmup here first so the box is rebuilt and its packages gathered',
    });
  }
  await writeFile(join(staging, MANIFEST), `${JSON.stringify({ format: FORMAT, version: 1, packages: unique }, null, 1)}\n`);
  await writeArchive(staging, members, output, { mtime: BUNDLE_MTIME });
  return { packages: unique.length };
}

/**
 * Verifies the bundle `file` and adds its packages to the store (origin "import").
 * Unpacks into `staging`; nothing is stored unless every member checks out.
 */
export async function importDebBundle(home: string, file: string, staging: string): Promise<{ packages: DebRef[]; added: number }> {
  const refuse = (problems: readonly string[], outcome: string): UserError =>
    refusedArchive(file, 'a package bundle', problems, outcome, 'export it again on the host that has the packages (vmfile lock export --output FILE) and copy it over whole');
  const listing = await listTar(file, `read the package bundle ${file}`);
  if ('error' in listing) throw refuse([`tar cannot read it: ${listing.error}`], 'Nothing was added.');
  const { members, unreadable } = listing;
  const problems = unreadable.slice(0, 3).map((line) => `tar lists ${JSON.stringify(printable(line, 200))}, which is not a file`);
  const seen = new Set<string>();
  for (const member of members) {
    const name = member.name.replace(/^\.\//, '');
    const quoted = JSON.stringify(printable(member.name, 200));
    if (member.type === 'directory' && (name === '' || name === '.')) continue;
    if (member.type !== 'file') problems.push(`${quoted} is a ${member.type}, not a regular file`);
    else if (name !== MANIFEST && !DEB_MEMBER.test(name)) problems.push(`${quoted} is neither ${MANIFEST} nor a package named by its sha256`);
    else if (/[sStT]/.test(member.permissions)) problems.push(`${quoted} has a setuid, setgid or sticky bit`);
    else if (member.size > (name === MANIFEST ? MAX_MANIFEST_BYTES : MAX_DEB_BYTES)) problems.push(`${quoted} is ${member.size} bytes, more than such a file may have`);
    if (seen.has(name)) problems.push(`${quoted} appears twice`);
    seen.add(name);
  }
  if (members.length > MAX_MEMBERS + 2) problems.push(`it has ${members.length} members, more than ${MAX_MEMBERS}`);
  if (!seen.has(MANIFEST)) problems.push(`it has no ${MANIFEST}`);
  if (problems.length > 0) throw refuse(problems, 'Nothing was unpacked or added.');
  const dir = join(staging, 'bundle');
  await mkdir(dir, { mode: 0o700 });
  const names = [...seen].filter((name) => name !== '' && name !== '.');
  await run('tar', ['--extract', `--file=${file}`, `--directory=${dir}`, '--no-same-owner', '--no-same-permissions', '--no-overwrite-dir', '--no-xattrs', '--no-acls', '--no-selinux', '--', ...members.filter((member) => member.type === 'file').map((member) => member.name)], {
    purpose: `unpack the package bundle ${file}`,
  });
  // What was written is checked again: an archive changed between the two reads is caught too.
  for (const name of await readdir(dir)) {
    const info = await lstat(join(dir, name));
    if (!info.isFile() || info.nlink !== 1 || !names.includes(name)) problems.push(`${JSON.stringify(printable(name, 200))} was unpacked as something it was not listed as`);
  }
  if (problems.length > 0) throw refuse(problems, 'What was unpacked was removed and nothing was added.');
  const manifest = manifestSchema.safeParse(parseUntrustedJson(await readFile(join(dir, MANIFEST), 'utf8')));
  if (!manifest.success) throw refuse(formatIssues(manifest.error.issues).map((line) => `${MANIFEST}: ${line}`), 'Nothing was added.');
  const packages = manifest.data.packages;
  const listed = new Set(packages.map((deb) => deb.sha256));
  for (const name of names) {
    const digest = DEB_MEMBER.exec(name)?.[2];
    if (digest !== undefined && !listed.has(digest)) problems.push(`${name} is not listed in ${MANIFEST}`);
  }
  for (const deb of packages) {
    const path = join(dir, `${deb.sha256}.deb`);
    if (!seen.has(`${deb.sha256}.deb`)) {
      problems.push(`${debLabel(deb)}: listed, but the bundle has no ${deb.sha256}.deb`);
      continue;
    }
    const actual = await sha256File(path);
    if (actual !== deb.sha256) problems.push(`${debLabel(deb)}: ${deb.sha256}.deb hashes to ${actual}; the file was changed after it was exported`);
  }
  if (problems.length > 0) throw refuse(problems, 'Nothing was added to the package store.');
  let added = 0;
  for (const deb of packages) {
    const before = await storedDeb(home, deb);
    const stored = await storeDeb(home, join(dir, `${deb.sha256}.deb`), deb, 'import');
    if ('problem' in stored) throw refuse([stored.problem], 'Nothing more was added.');
    if (!('path' in before)) added += 1;
  }
  await rm(dir, { recursive: true, force: true });
  return { packages, added };
}

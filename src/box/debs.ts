/**
 * The .deb files a box was built from (vmfile/deb-ref.ts), pure: what a control
 * paragraph says, where a Debian archive keeps a package, and the Packages index of a
 * local repository made of exactly the locked files (box/locked-packages.ts hands that to
 * mmdebstrap, so apt can choose nothing else).
 */
import { debRefSchema, type DebRef } from '../vmfile/deb-ref.js';

/** Fields of a control paragraph (dpkg-deb -f FILE), continuation lines joined with "\n". */
export function parseControl(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  let last: string | undefined;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if ((line.startsWith(' ') || line.startsWith('\t')) && last !== undefined) {
      fields.set(last, `${fields.get(last) ?? ''}\n${line}`);
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    last = line.slice(0, colon);
    fields.set(last, line.slice(colon + 1).trim());
  }
  return fields;
}

/**
 * The package a control paragraph describes, or the field that is missing or malformed.
 * "Source: foo (1.2-1)" (a binary rebuild) names source foo.
 */
export function debFromControl(control: Map<string, string>, sha256: string): DebRef | { problem: string } {
  const name = control.get('Package');
  const version = control.get('Version');
  const architecture = control.get('Architecture');
  const source = control.get('Source')?.split(' ')[0];
  const candidate = { name, version, architecture, ...(source === undefined || source === name ? {} : { source }), sha256 };
  const parsed = debRefSchema.safeParse(candidate);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  return { problem: `${issue?.path.join('.') ?? 'control'}: ${issue?.message ?? 'invalid'} (found ${JSON.stringify(issue === undefined ? null : (candidate as Record<string, unknown>)[String(issue.path[0])] ?? null)})` };
}

/**
 * Where a Debian archive keeps the file: pool/COMPONENT/PREFIX/SOURCE/NAME_VERSION_ARCH.deb,
 * PREFIX being the source's first letter, or its first four for lib* sources; the file
 * name carries the version without its epoch.
 */
export function poolPath(deb: DebRef, component = 'main'): string {
  const source = deb.source ?? deb.name;
  const prefix = source.startsWith('lib') && source.length > 3 ? source.slice(0, 4) : source.slice(0, 1);
  const version = deb.version.replace(/^[0-9]+:/, '');
  return `pool/${component}/${prefix}/${source}/${deb.name}_${version}_${deb.architecture}.deb`;
}

/** The name a package file gets in a local repository (and in an export): unique, and says what it is. */
export function debFileName(deb: DebRef): string {
  return `${deb.name}_${deb.version.replace(/^[0-9]+:/, '')}_${deb.architecture}.deb`;
}

/**
 * A Packages index for a flat repository (`deb [trusted=yes] file:///DIR ./`): each
 * file's own control paragraph with Filename, Size and SHA256 added, sorted by name so
 * the index does not depend on the order the files were gathered in.
 */
export function packagesIndex(entries: readonly { control: string; file: string; size: number; sha256: string; priority?: string }[]): string {
  const paragraphs = [...entries]
    .sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0))
    .map((entry) => `${withPriority(entry.control.replace(/\n+$/, ''), entry.priority)}\nFilename: ./${entry.file}\nSize: ${entry.size}\nSHA256: ${entry.sha256}\n`);
  return paragraphs.join('\n');
}

/** A control paragraph with its Priority field set to the archive's, as the archive's own index has it. */
function withPriority(control: string, priority: string | undefined): string {
  if (priority === undefined) return control;
  const lines = control.split('\n').filter((line) => !line.startsWith('Priority:'));
  return [...lines, `Priority: ${priority}`].join('\n');
}

/**
 * The archive's priority of each package in apt's Packages indexes (the build's
 * /var/lib/apt/lists), keyed "name version architecture"; only the keys asked for.
 */
export function archivePriorities(indexText: string, wanted: ReadonlySet<string>, into: Map<string, string>): void {
  // Indexes run to tens of MB: only the four fields that matter are read, line by line.
  let name = '';
  let version = '';
  let architecture = '';
  let priority: string | undefined;
  const flush = (): void => {
    const key = `${name} ${version} ${architecture}`;
    if (priority !== undefined && wanted.has(key) && !into.has(key)) into.set(key, priority);
    name = version = architecture = '';
    priority = undefined;
  };
  for (const line of indexText.split('\n')) {
    if (line.trim() === '') flush();
    else if (line.startsWith('Package:')) name = line.slice(8).trim();
    else if (line.startsWith('Version:')) version = line.slice(8).trim();
    else if (line.startsWith('Architecture:')) architecture = line.slice(13).trim();
    else if (line.startsWith('Priority:')) priority = line.slice(9).trim();
  }
  flush();
}

/**
 * Locked packages against installed "name version" lines: what the rebuilt box has that
 * the lock does not, and the other way round. Empty lists mean the same package set.
 */
export function packageSetDifference(locked: readonly DebRef[], installed: readonly string[]): { extra: string[]; missing: string[] } {
  const want = new Set(locked.map((deb) => `${deb.name} ${deb.version}`));
  const have = new Set(installed);
  return { extra: [...have].filter((line) => !want.has(line)).sort(), missing: [...want].filter((line) => !have.has(line)).sort() };
}

/**
 * One .deb file as box.json and Vmfile.lock pin it: name, version, architecture, the
 * source package when it is named otherwise (it decides where an archive keeps the file,
 * box/debs.ts), and the file's sha256. Both files are untrusted text, so every field has
 * the shape Debian gives it and nothing else: names and versions end up in URLs and
 * file names.
 */
import { z } from 'zod';

const SHA256 = /^[0-9a-f]{64}$/;
/** Debian policy 5.6.1 (names), 5.6.12 (versions), and dpkg's architecture names. */
export const PACKAGE_NAME = /^[a-z0-9][a-z0-9+.-]{0,127}$/;
export const PACKAGE_VERSION = /^(?:[0-9]+:)?[0-9A-Za-z.+~-]{1,127}$/;
export const ARCHITECTURE = /^[a-z0-9-]{1,32}$/;

/** "name version architecture" (debLabel), each part shaped as Debian gives it. */
export const DEB_LABEL = new RegExp(`^${PACKAGE_NAME.source.slice(1, -1)} ${PACKAGE_VERSION.source.slice(1, -1)} ${ARCHITECTURE.source.slice(1, -1)}$`);

export const debRefSchema = z.strictObject({
  name: z.string().regex(PACKAGE_NAME, { error: 'expected a Debian package name' }),
  version: z.string().regex(PACKAGE_VERSION, { error: 'expected a Debian version' }),
  architecture: z.string().regex(ARCHITECTURE, { error: 'expected a Debian architecture (amd64, all, ...)' }),
  /** The source package, when it is not named like the binary package. */
  source: z.string().regex(PACKAGE_NAME, { error: 'expected a Debian source package name' }).optional(),
  /**
   * The archive's priority for it, when the build read one: it decides what a priority-based
   * variant (minbase) installs, and Debian's archive overrides the file's own (apt is
   * "important" in its control file and "required" in bookworm's archive).
   */
  priority: z.enum(['required', 'important', 'standard', 'optional', 'extra'], { error: 'expected a Debian priority' }).optional(),
  sha256: z.string().regex(SHA256, { error: 'expected 64 lower-case hex digits' }),
});

export type DebRef = z.infer<typeof debRefSchema>;

/** "name version architecture", how people and error messages name a package. */
export function debLabel(deb: Pick<DebRef, 'name' | 'version' | 'architecture'>): string {
  return `${deb.name} ${deb.version} ${deb.architecture}`;
}


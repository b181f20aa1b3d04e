/**
 * What an SBOM of a project says, before it is written as SPDX or CycloneDX: each
 * machine, the box it runs (by disk digest), and every Debian package in it with its
 * version, architecture, source package, .deb digest and the layer that brought it (the
 * box, or a provisioning step). Made from Vmfile.lock and the box's manifest, without
 * booting. Pure: services/sbom.ts gathers the facts, spdx.ts and cyclonedx.ts write them.
 */
import { createHash } from 'node:crypto';

export interface SbomPackage {
  name: string;
  version: string;
  /** Absent when the box's manifest lists only names and versions (a packaged machine's box). */
  architecture?: string | undefined;
  source?: string | undefined;
  sha256?: string | undefined;
  /** What brought it: `box debian-12 2026.12.07`, or `step "install R"`. */
  layer: string;
}

export interface SbomMachine {
  name: string;
  box: { name: string; version: string; sha256: string; architecture: string };
  /** The Debian suite the box's packages came from (bookworm), when it was built from a recipe. */
  suite?: string | undefined;
  packages: SbomPackage[];
}

export interface Inventory {
  /** The project's name (its directory's), for the document's name. */
  project: string;
  tool: { name: string; version: string };
  /** ISO 8601: SOURCE_DATE_EPOCH when it is set, so that the same lock gives the same bytes. */
  created: string;
  machines: SbomMachine[];
}

/** Package URL (purl spec, type deb): pkg:deb/debian/NAME@VERSION?arch=ARCH&distro=SUITE. */
export function purl(deb: Pick<SbomPackage, 'name' | 'version' | 'architecture'>, suite?: string): string {
  const qualifiers = [deb.architecture === undefined ? undefined : `arch=${encodeURIComponent(deb.architecture)}`, suite === undefined ? undefined : `distro=${encodeURIComponent(suite)}`].filter((item) => item !== undefined);
  return `pkg:deb/debian/${encodeURIComponent(deb.name)}@${encodeURIComponent(deb.version)}${qualifiers.length === 0 ? '' : `?${qualifiers.join('&')}`}`;
}

/** A digest of what the document says (not when it was made), for its identifiers: the same inventory, the same ids. */
export function inventoryDigest(inventory: Inventory): string {
  return createHash('sha256').update(JSON.stringify({ project: inventory.project, tool: inventory.tool, machines: inventory.machines })).digest('hex');
}

/** An RFC 4122 name-based-looking UUID (version 5 layout) made from a hex digest. */
export function uuidFrom(digest: string): string {
  const hex = digest.slice(0, 32).split('');
  hex[12] = '5';
  hex[16] = ((Number.parseInt(hex[16] ?? '0', 16) & 0x3) | 0x8).toString(16);
  const text = hex.join('');
  return `${text.slice(0, 8)}-${text.slice(8, 12)}-${text.slice(12, 16)}-${text.slice(16, 20)}-${text.slice(20, 32)}`;
}

/** When the document was made: SOURCE_DATE_EPOCH (seconds) when set and valid, else `now`. */
export function creationTime(env: Record<string, string | undefined>, now: Date): string {
  const epoch = env['SOURCE_DATE_EPOCH'];
  const date = epoch !== undefined && /^\d{1,12}$/.test(epoch) ? new Date(Number(epoch) * 1000) : now;
  return `${date.toISOString().slice(0, 19)}Z`;
}

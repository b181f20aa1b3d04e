/**
 * Vagrant's box catalog (Vagrant calls it box metadata): a JSON document listing a box's
 * versions, each with one download per provider and architecture.
 *
 *   { "name": "org/name", "description": "...",
 *     "versions": [{ "version": "1.2.0",
 *       "providers": [{ "name": "libvirt", "url": "https://.../1.2.0/libvirt.box",
 *                       "checksum": "HEX", "checksum_type": "sha256",
 *                       "architecture": "amd64", "default_architecture": true }] }] }
 *
 * A catalog is untrusted input: it is validated here, and every problem is reported with
 * the URL and the field. Fields vmfile does not use (status, description_html, other
 * providers' details) are allowed and ignored, so real catalogs parse. Pure: fetching it
 * is box/remote.ts.
 *
 * Choosing: the newest version (or the newest that meets the Vmfile's constraints) that
 * has a download vmfile can run: provider "vmfile" (a box file made by `vmfile package`)
 * or "libvirt" (a Vagrant libvirt box: a qcow2 disk), for x86_64 ("amd64" in Vagrant's
 * words), or with no architecture given. The download must carry a SHA-2 checksum: an
 * unverified box is refused.
 */
import { z } from 'zod';
import { UserError } from '../errors.js';
import { BOX_NAME_PATTERN, BOX_NAME_RULE, BOX_VERSION_PATTERN } from './box-metadata.js';
import { CHECKSUM_ALGORITHMS, CHECKSUM_HEX_LENGTH, httpUrlSchema, type Checksum, type ChecksumAlgorithm } from './box-source.js';
import { formatIssues } from './config.js';
import { compareVersions, formatConstraints, satisfies, type VersionConstraint } from './version.js';

/** A catalog larger than this is refused unread: real ones are a few KiB. */
export const MAX_CATALOG_BYTES = 4 * 1024 * 1024;

/** Providers whose boxes vmfile can import, preferred first. */
export const CATALOG_PROVIDERS = ['vmfile', 'libvirt'] as const;
export type CatalogProvider = (typeof CATALOG_PROVIDERS)[number];

/** Architecture names that mean this host's (vmfile runs x86_64 guests). */
const HOST_ARCHITECTURES = ['amd64', 'x86_64'];

const text = (max: number) => z.string().max(max, { error: `expected at most ${max} characters` });

const providerSchema = z.object({
  name: text(64),
  url: httpUrlSchema,
  checksum: text(256).nullish(),
  checksum_type: text(32).nullish(),
  architecture: text(32).nullish(),
  default_architecture: z.boolean().nullish(),
});

const versionSchema = z.object({
  version: z.string().regex(BOX_VERSION_PATTERN, { error: 'a version is letters, digits, ".", "_", "+" and "-", at most 64 characters' }),
  providers: z.array(providerSchema).max(256, { error: 'at most 256 providers per version' }),
});

export const catalogSchema = z
  .object({
    name: z.string().regex(BOX_NAME_PATTERN, { error: `box names are ${BOX_NAME_RULE}` }),
    description: text(65536).nullish(),
    versions: z.array(versionSchema).max(10_000, { error: 'at most 10000 versions' }),
  })
  .superRefine((catalog, ctx) => {
    const seen = new Set<string>();
    catalog.versions.forEach((entry, index) => {
      if (seen.has(entry.version)) ctx.addIssue({ code: 'custom', path: ['versions', index, 'version'], message: `version ${entry.version} is listed twice` });
      seen.add(entry.version);
    });
  });

export type Catalog = z.infer<typeof catalogSchema>;

const HINT = 'the catalog is damaged or not a Vagrant box catalog; check the URL, or tell whoever publishes it';

/**
 * The catalog in `body`, or a UserError listing every field that is wrong. `where`
 * opens every message: 'box org/name: catalog https://…/catalog.json'.
 */
export function parseCatalog(body: string, where: string): Catalog {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch (error) {
    throw new UserError(`${where} is not JSON (${error instanceof Error ? error.message : String(error)})`, { hint: HINT });
  }
  const parsed = catalogSchema.safeParse(value);
  if (!parsed.success) {
    const problems = formatIssues(parsed.error.issues);
    // A hostile catalog can have a problem in each of thousands of entries.
    const shown = problems.slice(0, 10).map((line) => `  - ${line}`);
    if (problems.length > 10) shown.push(`  - and ${problems.length - 10} more`);
    throw new UserError(`${where} is invalid:\n${shown.join('\n')}`, { hint: HINT });
  }
  return parsed.data;
}

export interface CatalogChoice {
  version: string;
  provider: CatalogProvider;
  url: string;
  checksum: Checksum;
  /** Where in the catalog the choice was made ("versions[2].providers[0]"), for messages. */
  field: string;
}

/**
 * The download to install, as described in the module comment, for the given version
 * constraints (an exact version is "= V"; none: the newest); a UserError saying why not
 * when there is none (no version meets the constraints, no provider vmfile can run, no
 * or an unsupported checksum).
 */
export function chooseFromCatalog(catalog: Catalog, where: string, constraints: readonly VersionConstraint[] = []): CatalogChoice {
  const indexed = catalog.versions.map((entry, index) => ({ entry, index }));
  const candidates = indexed.filter(({ entry }) => satisfies(entry.version, constraints)).sort((a, b) => compareVersions(b.entry.version, a.entry.version));
  const wanted = constraints.length === 0 ? '' : ` meeting ${formatConstraints(constraints)}`;
  if (candidates.length === 0) {
    const listed = catalog.versions.map((entry) => entry.version).sort(compareVersions);
    throw new UserError(`${where} has no version${wanted} (it lists ${listed.length === 0 ? 'none' : listed.join(', ')})`, {
      hint: 'change the version in the Vmfile (or --version), or ask for a version the catalog has',
    });
  }
  for (const { entry, index } of candidates) {
    const usable = usableProvider(entry.providers);
    if (usable === undefined) continue;
    const field = `versions[${index}].providers[${usable.index}]`;
    return { version: entry.version, provider: usable.provider, url: usable.entry.url, checksum: checksumOf(usable.entry, `${where}: ${field}`), field };
  }
  const offered = [...new Set(candidates.flatMap(({ entry }) => entry.providers.map((p) => (p.architecture === undefined || p.architecture === null ? p.name : `${p.name} (${p.architecture})`))))];
  throw new UserError(`${where}: no version${wanted} has a ${CATALOG_PROVIDERS.join(' or ')} box for x86_64 (offered: ${offered.length === 0 ? 'nothing' : offered.sort().join(', ')})`, {
    hint: 'vmfile runs libvirt (qcow2) boxes and its own box files; use a catalog that publishes one',
  });
}

type ProviderEntry = Catalog['versions'][number]['providers'][number];

/** The best provider entry of one version: this host's architecture before an unspecified one, then vmfile before libvirt. */
function usableProvider(providers: readonly ProviderEntry[]): { entry: ProviderEntry; index: number; provider: CatalogProvider } | undefined {
  const ranked = providers
    .map((entry, index) => ({ entry, index, provider: CATALOG_PROVIDERS.find((name) => name === entry.name), fit: architectureFit(entry) }))
    .filter((item): item is { entry: ProviderEntry; index: number; provider: CatalogProvider; fit: number } => item.provider !== undefined && item.fit > 0)
    .sort((a, b) => b.fit - a.fit || CATALOG_PROVIDERS.indexOf(a.provider) - CATALOG_PROVIDERS.indexOf(b.provider));
  return ranked[0];
}

/**
 * 2: built for this host; 1: no architecture given (catalogs older than Vagrant 2.4), or
 * "unknown" marked as the default; 0: another architecture.
 */
function architectureFit(entry: ProviderEntry): number {
  const architecture = entry.architecture?.toLowerCase();
  if (architecture === undefined) return 1;
  if (HOST_ARCHITECTURES.includes(architecture)) return 2;
  if (architecture === 'unknown' && entry.default_architecture === true) return 1;
  return 0;
}

function checksumOf(entry: ProviderEntry, field: string): Checksum {
  const type = entry.checksum_type?.toLowerCase();
  const hex = entry.checksum?.toLowerCase();
  if (hex === undefined || hex === '' || type === undefined || type === '') {
    throw new UserError(`${field}: no checksum and checksum_type, and vmfile does not install a box it cannot verify`, { hint: 'ask whoever publishes the catalog to add sha256 checksums' });
  }
  if (!(CHECKSUM_ALGORITHMS as readonly string[]).includes(type)) {
    throw new UserError(`${field}.checksum_type: ${JSON.stringify(entry.checksum_type)} is not supported (vmfile verifies ${CHECKSUM_ALGORITHMS.join(', ')})`, {
      hint: 'md5 and sha1 no longer show that a file is the one published; ask for a sha256 checksum',
    });
  }
  const algorithm = type as ChecksumAlgorithm;
  if (!new RegExp(`^[0-9a-f]{${CHECKSUM_HEX_LENGTH[algorithm]}}$`).test(hex)) {
    throw new UserError(`${field}.checksum: expected ${CHECKSUM_HEX_LENGTH[algorithm]} hex digits for ${algorithm}`, { hint: HINT });
  }
  return { algorithm, hex };
}

/**
 * Boxes from the network: `vmfile box add NAME URL`, a Vmfile's `box: { url }` (vmup
 * downloads the box when it is missing), and the catalog look-ups of `box outdated` and
 * `box update`.
 *
 * A URL is a Vagrant catalog when its path ends in .json or the server calls it JSON
 * (Content-Type, asked with HEAD, as Vagrant does); anything else is a box file. A
 * catalog names its versions' box files and their checksums (vmfile/catalog.ts); a box
 * file is downloaded as it is (download.ts), verified, then imported by addBox. What was
 * downloaded, from which catalog and with which checksum is recorded in box.json.
 * Credentials in a URL (`https://user:token@host/…`) go with the requests only: what is
 * shown or recorded is the URL with `***` for them (redactUrl).
 */
import { ConfigError, UserError } from '../errors.js';
import { downloadPaths } from '../store/layout.js';
import { inPhase, type Reporter } from '../ui/reporter.js';
import type { BoxOrigin } from '../vmfile/box-metadata.js';
import { checkHttpUrl, formatChecksum, hasRedactedCredentials, parseChecksum, redactUrl, type Checksum } from '../vmfile/box-source.js';
import { chooseFromCatalog, MAX_CATALOG_BYTES, parseCatalog, type Catalog, type CatalogChoice } from '../vmfile/catalog.js';
import { formatSize } from '../vmfile/size.js';
import type { VersionConstraint } from '../vmfile/version.js';
import { discardDownload, download } from './download.js';
import { contentTypeOf, downloadText, type HttpOptions } from './http.js';
import { addBox, checkBoxName } from './import.js';
import { refuseRecipeName } from './recipes.js';
import type { SpaceProbe } from './space.js';
import { findBox, type InstalledBox } from './store.js';

/** Timeouts, retry pauses, bounds and the free-space reading, for tests; the defaults suit real servers and disks. */
export type NetworkSettings = Pick<HttpOptions, 'idleTimeoutMs' | 'maxRedirects'> & { retryDelayMs?: number; maxBytes?: number; freeSpace?: SpaceProbe };

export interface RemoteAddOptions {
  home: string;
  reporter: Reporter;
  name: string;
  /** A Vagrant catalog or a box file. */
  url: string;
  /** The box file's checksum ("sha256:HEX"); not for a catalog, which gives its own. */
  checksum?: string;
  /** Install this version: from the catalog, or the version to store a box file under. */
  version?: string;
  /** Or the newest catalog version that meets these. */
  constraints?: readonly VersionConstraint[];
  /**
   * Refuse a box file without a checksum (vmup: a shared Vmfile must say what it
   * downloads). `vmfile box add` allows it, as Vagrant does, and says so.
   */
  requireChecksum?: boolean;
  network?: NetworkSettings;
}

export async function addBoxFromUrl(options: RemoteAddOptions): Promise<InstalledBox> {
  checkBoxName(options.name, options.version);
  await refuseRecipeName(options.name);
  const what = `box ${options.name}`;
  const shown = redactUrl(options.url);
  const problem = checkHttpUrl(options.url);
  if (problem !== undefined) throw new UserError(`${what}: ${JSON.stringify(shown.slice(0, 200))} is not a URL vmfile downloads from: expected ${problem}`);
  if (await isCatalog(options.url, what, options.network)) {
    if (options.checksum !== undefined) {
      throw new UserError(`${what}: ${shown} is a catalog, which gives each version's checksum; a checksum of your own applies only to a box file URL`, {
        hint: 'leave out the checksum (--checksum, or checksum in the Vmfile)',
      });
    }
    const catalog = await fetchCatalog(options.name, options.url, options.network);
    const constraints = options.version === undefined ? (options.constraints ?? []) : [{ operator: '=' as const, version: options.version }];
    const choice = chooseFromCatalog(catalog, catalogWhere(options.name, options.url), constraints);
    return installFromCatalog({ ...options, catalog: options.url }, choice);
  }
  const checksum = options.checksum === undefined ? undefined : parseChecksum(options.checksum);
  if (options.checksum !== undefined && checksum === undefined) throw new UserError(`${what}: checksum ${JSON.stringify(options.checksum)} is not of the form sha256:<64 hex digits>`);
  if (checksum === undefined) {
    if (options.requireChecksum === true) {
      throw new ConfigError(`${what}: ${shown} is a box file, and vmup downloads one only with its checksum`, {
        hint: `add checksum: 'sha256:…' to the box in the Vmfile (sha256sum of the file), or install it yourself with: vmfile box add ${options.name} ${shown}`,
      });
    }
    options.reporter.notice(`box ${options.name}: no checksum given, so the download from ${shown} is not verified (pass --checksum sha256:HEX to verify it)`);
  }
  if (options.version !== undefined) await refuseInstalled(options.home, options.name, options.version);
  return fetchAndImport(options, options.url, checksum, options.version, { url: shown, ...(checksum === undefined ? {} : { checksum: formatChecksum(checksum) }) });
}

/** Installs the catalog's chosen version (box update, or a catalog URL given to box add or vmup). */
export async function installFromCatalog(options: Omit<RemoteAddOptions, 'url' | 'checksum' | 'constraints'> & { catalog: string }, choice: CatalogChoice): Promise<InstalledBox> {
  await refuseInstalled(options.home, options.name, choice.version);
  options.reporter.info(`box ${options.name}`, `version ${choice.version} (${choice.provider}) from the catalog ${redactUrl(options.catalog)}`);
  const origin = { url: redactUrl(choice.url), catalog: redactUrl(options.catalog), checksum: formatChecksum(choice.checksum) };
  return fetchAndImport(options, choice.url, choice.checksum, choice.version, origin);
}

/** The newest version the catalog offers this host (what box outdated and box update compare with). */
export async function newestInCatalog(name: string, catalogUrl: string, network?: NetworkSettings): Promise<CatalogChoice> {
  return chooseFromCatalog(await fetchCatalog(name, catalogUrl, network), catalogWhere(name, catalogUrl));
}

async function fetchCatalog(name: string, url: string, network?: NetworkSettings): Promise<Catalog> {
  const where = catalogWhere(name, url);
  if (hasRedactedCredentials(url)) {
    throw new UserError(`${where} needs credentials, which vmfile does not keep`, {
      hint: `box outdated and box update cannot ask it; install its newest version with the URL and its credentials: vmfile box add ${name} URL`,
    });
  }
  const { body } = await downloadText(url, MAX_CATALOG_BYTES, { what: `box ${name}`, ...httpSettings(network) });
  const catalog = parseCatalog(body, where);
  // As in Vagrant: a catalog for another box is a wrong URL, not a box to rename.
  if (catalog.name !== name) {
    throw new UserError(`${where}: name: the catalog is for box "${catalog.name}", not "${name}"`, { hint: `use the name the catalog gives: ${catalog.name}` });
  }
  return catalog;
}

function catalogWhere(name: string, url: string): string {
  return `box ${name}: catalog ${redactUrl(url)}`;
}

async function isCatalog(url: string, what: string, network?: NetworkSettings): Promise<boolean> {
  if (new URL(url).pathname.endsWith('.json')) return true;
  const type = await contentTypeOf(url, { what, ...httpSettings(network) });
  return type !== undefined && /[/+]json\b/i.test(type);
}

async function refuseInstalled(home: string, name: string, version: string): Promise<void> {
  if ((await findBox(home, { name, version })) !== undefined) {
    throw new UserError(`box ${name} version ${version} is already installed`, { hint: `remove it first (vmfile box remove ${name} --version ${version}) to download it again` });
  }
}

/**
 * Downloads (resuming what an earlier run left), verifies, imports. The download is
 * removed once imported, and also when the import fails: it was verified, but keeping
 * box-sized files around for a retry that may never come is worse than downloading again.
 */
async function fetchAndImport(
  options: Pick<RemoteAddOptions, 'home' | 'reporter' | 'name' | 'network'>,
  url: string,
  checksum: Checksum | undefined,
  version: string | undefined,
  origin: BoxOrigin,
): Promise<InstalledBox> {
  const label = `box ${options.name}`;
  const paths = downloadPaths(options.home, url);
  const file = await inPhase(options.reporter, label, `Downloading ${redactUrl(url)}`, (phase) =>
    download({
      url,
      paths,
      what: label,
      ...(checksum === undefined ? {} : { checksum }),
      ...httpSettings(options.network),
      ...(options.network?.retryDelayMs === undefined ? {} : { retryDelayMs: options.network.retryDelayMs }),
      ...(options.network?.maxBytes === undefined ? {} : { maxBytes: options.network.maxBytes }),
      ...(options.network?.freeSpace === undefined ? {} : { freeSpace: options.network.freeSpace }),
      onProgress: (received, total, resumedFrom) => {
        if (total !== undefined && total > 0) phase.measure(received / total, total, resumedFrom / total);
        else phase.progress(`${formatSize(received)} so far`);
      },
      onNotice: (text) => options.reporter.info(label, text),
    }),
  );
  try {
    const freeSpace = options.network?.freeSpace === undefined ? {} : { freeSpace: options.network.freeSpace };
    return await addBox({ home: options.home, reporter: options.reporter, name: options.name, file: file.path, ...(version === undefined ? {} : { version }), origin, ...freeSpace });
  } finally {
    await discardDownload(paths);
  }
}

function httpSettings(network: NetworkSettings | undefined): Pick<HttpOptions, 'idleTimeoutMs' | 'maxRedirects'> {
  return {
    ...(network?.idleTimeoutMs === undefined ? {} : { idleTimeoutMs: network.idleTimeoutMs }),
    ...(network?.maxRedirects === undefined ? {} : { maxRedirects: network.maxRedirects }),
  };
}

/**
 * `vmfile sbom`: the project's machines as an SPDX 2.3 or CycloneDX 1.6 document, made
 * from Vmfile.lock (the box's digest and, for a box built from a recipe, every .deb with
 * its digest and source package) and, where the lock names no packages, the installed
 * box's manifest (names and versions). Nothing boots and nothing is downloaded.
 */
import { basename } from 'node:path';
import { ConfigError, UserError } from '../errors.js';
import { findBox } from '../box/store.js';
import type { ServiceContext } from '../instance/context.js';
import { selectMachines } from '../instance/select.js';
import { cyclonedxDocument } from '../sbom/cyclonedx.js';
import { creationTime, type Inventory, type SbomMachine, type SbomPackage } from '../sbom/inventory.js';
import { spdxDocument } from '../sbom/spdx.js';
import { readLockFile } from '../store/lockfile.js';
import { writeFileAtomic } from '../store/json.js';
import type { Project } from '../vmfile/config.js';
import type { LockEntry } from '../vmfile/lock.js';

export type SbomFormat = 'spdx' | 'cyclonedx';

export interface SbomOptions {
  project: Project;
  machines?: readonly string[];
  format: SbomFormat;
  /** Where to write it; the text is returned either way. */
  output?: string | undefined;
  tool: { name: string; version: string };
}

export interface SbomResult {
  text: string;
  machines: { name: string; packages: number; withDigest: number }[];
}

export async function sbom(options: SbomOptions, context: ServiceContext): Promise<SbomResult> {
  const lock = await readLockFile(options.project.dir);
  const machines: SbomMachine[] = [];
  for (const machine of selectMachines(options.project, options.machines)) {
    const entry = lock.machines[machine.name];
    if (entry === undefined) {
      throw new ConfigError(`machine "${machine.name}" is not in Vmfile.lock, so there is no box to describe`, {
        hint: 'vmup writes the lock when it starts the machine; or run vmfile lock --update once its box is installed',
      });
    }
    machines.push(await describeMachine(machine.name, entry, context));
  }
  const inventory: Inventory = { project: basename(options.project.dir), tool: options.tool, created: creationTime(context.env, new Date()), machines };
  const document = options.format === 'spdx' ? spdxDocument(inventory) : cyclonedxDocument(inventory);
  const text = `${JSON.stringify(document, null, 2)}\n`;
  if (options.output !== undefined) {
    await writeFileAtomic(options.output, text, { mode: 0o644 }).catch((error: unknown) => {
      throw new UserError(`cannot write ${options.output}: ${error instanceof Error ? error.message : String(error)}`, { hint: 'give --output a path in a directory that exists and that you can write' });
    });
  }
  return { text, machines: machines.map((machine) => ({ name: machine.name, packages: machine.packages.length, withDigest: machine.packages.filter((deb) => deb.sha256 !== undefined).length })) };
}

async function describeMachine(name: string, entry: LockEntry, context: ServiceContext): Promise<SbomMachine> {
  const machine = await describeBox(name, entry, context);
  return { ...machine, packages: [...machine.packages, ...stepPackages(entry, new Set(machine.packages.map((deb) => deb.sha256)))] };
}

/**
 * What the steps installed, as Vmfile.lock records it, each once: a file the box (or an
 * earlier step, in name order) brought already is not listed again. Unpinned ones are
 * listed without a digest.
 */
function stepPackages(entry: LockEntry, seen: Set<string | undefined>): SbomPackage[] {
  const packages: SbomPackage[] = [];
  for (const [step, record] of Object.entries(entry.steps ?? {})) {
    const layer = `step "${step}"`;
    for (const deb of record.packages) {
      if (seen.has(deb.sha256)) continue;
      seen.add(deb.sha256);
      packages.push({ name: deb.name, version: deb.version, architecture: deb.architecture, source: deb.source, sha256: deb.sha256, layer });
    }
    for (const label of record.unpinned ?? []) {
      if (seen.has(label)) continue;
      seen.add(label);
      const [debName = '', version = '', architecture] = label.split(' ');
      packages.push({ name: debName, version, architecture, layer });
    }
  }
  return packages;
}

async function describeBox(name: string, entry: LockEntry, context: ServiceContext): Promise<SbomMachine> {
  const layer = `box ${entry.box} ${entry.version}`;
  const installed = await findBox(context.home, { name: entry.box, version: entry.version });
  const box = { name: entry.box, version: entry.version, sha256: entry.sha256, architecture: installed?.metadata.architecture ?? 'x86_64' };
  const locked = entry.recipe?.packages;
  if (locked !== undefined) {
    const packages = locked.map((deb): SbomPackage => ({ name: deb.name, version: deb.version, architecture: deb.architecture, source: deb.source, sha256: deb.sha256, layer }));
    return { name, box, suite: entry.recipe?.suite, packages };
  }
  const source = installed?.metadata.source;
  const listed = source !== undefined && 'packages' in source ? (source.packages ?? []) : [];
  if (listed.length === 0) {
    context.reporter.notice(`machine "${name}": neither Vmfile.lock nor box ${entry.box} ${entry.version}${installed === undefined ? ' (not installed here)' : ''} lists its packages; the SBOM names the box and its digest only`);
  } else if (installed !== undefined) {
    context.reporter.notice(`machine "${name}": box ${entry.box} ${entry.version} lists package names and versions without their digests (Vmfile.lock pins no packages for it)`);
  }
  const packages = listed.flatMap((line): SbomPackage[] => {
    const [packageName, version] = line.split(' ');
    return packageName === undefined || version === undefined ? [] : [{ name: packageName, version, layer }];
  });
  return { name, box, suite: entry.recipe?.suite, packages };
}

/**
 * `vmfile lock export` and `vmfile lock import`: the packages a project's Vmfile.lock
 * pins (its boxes' and what its steps installed), carried to another host as one file
 * (box/deb-bundle.ts), so that vmup there rebuilds the locked box and provisions with
 * the pinned packages without a network.
 */
import { resolve } from 'node:path';
import { stat } from 'node:fs/promises';
import { importDebBundle, writeDebBundle } from '../box/deb-bundle.js';
import { cleanStaging, makeStaging } from '../box/store.js';
import { UserError } from '../errors.js';
import type { ServiceContext } from '../instance/context.js';
import { lockFilePath } from '../store/layout.js';
import { readLockFile } from '../store/lockfile.js';
import { inPhase } from '../ui/reporter.js';
import type { Project } from '../vmfile/config.js';
import type { DebRef } from '../vmfile/deb-ref.js';
import { lockedPackages } from '../vmfile/lock-steps.js';

export async function exportLockedPackages(options: { project: Project; output: string }, context: ServiceContext): Promise<{ output: string; packages: number; bytes: number }> {
  const lock = await readLockFile(options.project.dir);
  // The boxes' packages, and what the steps installed.
  const debs: DebRef[] = Object.values(lock.machines).flatMap((entry) => lockedPackages(entry));
  if (debs.length === 0) {
    throw new UserError(`${lockFilePath(options.project.dir)} names no packages: its boxes were not built from a recipe, or were locked before vmfile recorded their packages, and no step installed any`, {
      hint: 'vmup (or vmfile lock --update) after vmfile box build records them',
    });
  }
  const output = resolve(options.output);
  const staging = await makeStaging(context.home, 'lock-export');
  try {
    const written = await inPhase(context.reporter, 'lock', `Writing ${output}`, () => writeDebBundle(context.home, debs, output, staging, lockFilePath(options.project.dir)));
    return { output, packages: written.packages, bytes: (await stat(output)).size };
  } finally {
    await cleanStaging(staging);
  }
}

export async function importPackages(options: { file: string }, context: ServiceContext): Promise<{ file: string; packages: number; added: number }> {
  const file = resolve(options.file);
  const staging = await makeStaging(context.home, 'lock-import');
  try {
    const imported = await inPhase(context.reporter, 'lock', `Checking and storing the packages in ${file}`, () => importDebBundle(context.home, file, staging));
    return { file, packages: imported.packages.length, added: imported.added };
  } finally {
    await cleanStaging(staging);
  }
}

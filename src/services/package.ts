/**
 * `vmfile package`: a halted machine as a box file another host can `vmfile box add`,
 * so a provisioned environment can be handed over whole.
 *
 * The machine's overlay is flattened (the box it came from is folded in, the backing
 * file reference dropped) into a raw copy, the copy is scrubbed of the machine's keys
 * and identity (box/scrub.ts), checked, and converted back to qcow2. The machine itself
 * is only read, never changed; the output appears whole or not at all.
 */
import { copyFile, mkdir, rm, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { writeBoxArchive } from '../box/archive.js';
import { dumpFile } from '../box/debugfs.js';
import { sha256File } from '../box/digest.js';
import { todayVersion, checkBoxName } from '../box/import.js';
import { packagesIn } from '../box/manifest.js';
import type { BoxMetadata } from '../box/metadata.js';
import { scrubImage } from '../box/scrub.js';
import { cleanStaging, findBox, makeStaging } from '../box/store.js';
import { requireCommands, run } from '../exec.js';
import { UserError } from '../errors.js';
import { imageInfo } from '../qemu/img.js';
import { BOX_DISK_FILE, BOX_INITRD_FILE, BOX_KERNEL_FILE, BOX_METADATA_FILE } from '../state/layout.js';
import { withMachineLock } from '../state/lock.js';
import { writeJsonAtomic } from '../state/machine.js';
import { inPhase } from '../ui/reporter.js';
import { formatSize } from '../vmfile/size.js';
import { hostnameFrom, type Project } from '../vmfile/config.js';
import { machineStatus, selectMachines, type ServiceContext } from './machine.js';

export interface PackageOptions {
  project: Project;
  /** Default: the Vmfile's only machine. */
  machine?: string;
  output: string;
  /** Box name written into box.json (default: the project directory's name). */
  name?: string;
  version?: string;
}

export interface PackageResult {
  machine: string;
  output: string;
  metadata: BoxMetadata;
  /** What was removed from the copy (keys, identity, cloud-init state). */
  scrubbed: string[];
}

/** Timestamps inside the box file: fixed, so packaging the same disk twice gives the same file. */
const ARCHIVE_MTIME = 1_700_000_000;

export async function packageMachine(options: PackageOptions, context: ServiceContext): Promise<PackageResult> {
  await requireCommands(['qemu-img', 'debugfs', 'e2fsck', 'tar', 'dpkg-query'], 'vmfile package');
  const machines = selectMachines(options.project, options.machine === undefined ? [] : [options.machine]);
  const [machine] = machines;
  if (machine === undefined || machines.length > 1) {
    throw new UserError(`this Vmfile has ${machines.length} machines: name the one to package`, { hint: `vmfile package MACHINE --output FILE.box` });
  }
  const name = options.name ?? hostnameFrom(basename(options.project.dir));
  const version = options.version ?? todayVersion();
  checkBoxName(name, version);
  const output = resolve(process.cwd(), options.output);
  const status = await machineStatus(options.project.dir, machine.name);
  return withMachineLock(status.paths.lock, machine.name, 'package', async () => {
    const current = await machineStatus(options.project.dir, machine.name);
    if (current.status === 'not created' || current.state === undefined) {
      throw new UserError(`machine "${machine.name}" is not created, so there is nothing to package`, { hint: 'vmup creates and provisions it' });
    }
    if (current.status === 'running') {
      throw new UserError(`machine "${machine.name}" is running (pid ${current.pid}); a running machine's disk is still changing, so it cannot be packaged`, {
        hint: `halt it first: vmfile halt${options.project.machines.length > 1 ? ` ${machine.name}` : ''}, then run vmfile package again`,
      });
    }
    const state = current.state;
    const box = await findBox(context.home, { name: state.box.name, version: state.box.version });
    if (box === undefined) {
      throw new UserError(`machine "${machine.name}": its box ${state.box.name} ${state.box.version} is no longer installed, so its disk cannot be read whole`, {
        hint: 'install that box version again (vmfile box add / box build --version), then package',
      });
    }
    const label = `machine "${machine.name}"`;
    const staging = await makeStaging(context.home, `package-${machine.name}`);
    const signal = context.signal === undefined ? {} : { signal: context.signal };
    try {
      const raw = join(staging, 'disk.raw');
      await inPhase(context.reporter, machine.name, 'Flattening the disk (box + changes) into a copy', () =>
        run('qemu-img', ['convert', '-O', 'raw', current.paths.overlay, raw], { purpose: `flatten the disk of ${label}`, ...signal }),
      );
      const sourceDateEpoch = box.metadata.source.kind === 'recipe' ? box.metadata.source.sourceDateEpoch : undefined;
      const scrubbed = await inPhase(context.reporter, machine.name, 'Removing keys and machine identity from the copy', () =>
        scrubImage(raw, { user: state.user, label, ...(sourceDateEpoch === undefined ? {} : { sourceDateEpoch }) }),
      );
      const packages = await manifestOf(raw, staging);
      const disk = join(staging, BOX_DISK_FILE);
      await inPhase(context.reporter, machine.name, 'Converting the copy to qcow2', () =>
        run('qemu-img', ['convert', '-O', 'qcow2', raw, disk], { purpose: `convert the disk copy of ${label}`, ...signal }),
      );
      await rm(raw, { force: true });
      const boot = box.metadata.boot;
      if (boot.type === 'kernel') {
        await copyFile(box.paths.kernel, join(staging, BOX_KERNEL_FILE));
        if (boot.initrd !== undefined) await copyFile(box.paths.initrd, join(staging, BOX_INITRD_FILE));
      }
      const metadata: BoxMetadata = {
        name,
        version,
        architecture: box.metadata.architecture,
        disk: { file: BOX_DISK_FILE, format: 'qcow2', sha256: await sha256File(disk), virtualSize: (await imageInfo(disk)).virtualSize },
        boot: boot.type === 'kernel' ? { type: 'kernel', kernel: BOX_KERNEL_FILE, ...(boot.initrd === undefined ? {} : { initrd: BOX_INITRD_FILE }), cmdline: boot.cmdline } : boot,
        user: state.user,
        created: new Date().toISOString(),
        source: { kind: 'package', machine: machine.name, fromBox: `${box.metadata.name} ${box.metadata.version}`, ...(packages === undefined ? {} : { packages }) },
      };
      await writeJsonAtomic(join(staging, BOX_METADATA_FILE), metadata);
      await mkdir(resolve(output, '..'), { recursive: true });
      await inPhase(context.reporter, machine.name, `Writing ${output}`, () => writeBoxArchive(staging, metadata, output, { mtime: ARCHIVE_MTIME, ...signal }));
      context.reporter.info(machine.name, `packaged as box ${name} ${version} (${formatSize((await stat(output)).size)}); on another host: vmfile box add NAME ${basename(output)}`);
      return { machine: machine.name, output, metadata, scrubbed };
    } finally {
      await cleanStaging(staging);
    }
  });
}

/** The disk's package list, from its dpkg status file; undefined for a disk without dpkg. */
async function manifestOf(raw: string, staging: string): Promise<string[] | undefined> {
  const admindir = join(staging, 'dpkg');
  await mkdir(admindir);
  if (!(await dumpFile(raw, '/var/lib/dpkg/status', join(admindir, 'status')))) return undefined;
  try {
    return await packagesIn(admindir);
  } finally {
    await rm(admindir, { recursive: true, force: true });
  }
}

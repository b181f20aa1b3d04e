/**
 * `vmfile package`: a halted machine as a box file another host can `vmfile box add`,
 * so a provisioned environment can be handed over whole. The machine itself is only
 * read, never changed (see box/package.ts for what goes into the file).
 */
import { basename, resolve } from 'node:path';
import { todayVersion, checkBoxName } from '../box/import.js';
import type { BoxFormat } from '../box/formats.js';
import { packageBox, type PackageResult as PackagedBox } from '../box/package.js';
import { findBox } from '../box/store.js';
import { requireCommands } from '../exec.js';
import { UserError } from '../errors.js';
import type { ServiceContext } from '../instance/context.js';
import { withMachine } from '../instance/locked.js';
import { selectOne } from '../instance/select.js';
import { refuseIfUnusable } from '../lifecycle/start.js';
import { hostnameFrom, type Project } from '../vmfile/config.js';
import { formatSize } from '../vmfile/size.js';

export interface PackageOptions {
  project: Project;
  /** Default: the Vmfile's only machine. */
  machine?: string;
  output: string;
  /** Box name written into box.json (default: the project directory's name). */
  name?: string;
  version?: string;
  /** Default: vmfile's own box format. */
  format?: BoxFormat;
}

/** The box written, what was removed from the copy (keys, identity, cloud-init state), and where. */
export type PackageResult = PackagedBox & { machine: string; output: string; name: string; version: string };

export async function packageMachine(options: PackageOptions, context: ServiceContext): Promise<PackageResult> {
  const format = options.format ?? 'vmfile';
  await requireCommands(['qemu-img', 'debugfs', 'e2fsck', 'zerofree', 'tar', 'dpkg-query', ...(format === 'vagrant-libvirt' ? ['grub-mkimage', 'dumpe2fs', 'resize2fs', 'dd'] : [])], `vmfile package --format ${format}`);
  const machine = selectOne(options.project, options.machine, { command: 'vmfile package MACHINE --output FILE.box', usePrimary: false });
  const name = options.name ?? hostnameFrom(basename(options.project.dir));
  const version = options.version ?? todayVersion();
  checkBoxName(name, version);
  const output = resolve(process.cwd(), options.output);
  return withMachine(options.project, machine.name, 'package', async (current) => {
    refuseIfUnusable(current);
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
    const packaged = await packageBox({
      home: context.home,
      machine: machine.name,
      box,
      user: state.user,
      name,
      version,
      output,
      exportDisk: (raw, onProgress) => current.driver.exportDisk(raw, onProgress),
      reporter: context.reporter,
      format,
    });
    const next = format === 'vagrant-libvirt' ? `vagrant box add --name ${name} ${basename(output)}, then vagrant up --provider=libvirt` : `vmfile box add NAME ${basename(output)}`;
    context.reporter.info(machine.name, `packaged as box ${name} ${version} (${formatSize(packaged.bytes)}); on another host: ${next}`);
    return { ...packaged, machine: machine.name, output, name, version };
  });
}

/**
 * A machine's disk as a box for Vagrant's libvirt provider (`vmfile package --format
 * vagrant-libvirt`), so that people who stay on Vagrant can use what vmfile packages.
 * What Vagrant expects of such a box, and how a vmfile disk is made to meet it:
 *
 * - **It boots itself.** A vmfile box boots its kernel directly from an unpartitioned
 *   file system; vagrant-libvirt starts a disk under BIOS firmware. The file system goes
 *   into a partition 1 MiB from the start, and GRUB is written in front of it by hand
 *   (box/boot-sector.ts): a core image whose embedded config boots the guest's own
 *   /vmlinuz and /initrd.img, so a kernel upgraded inside the guest is the one booted.
 *   Nothing is mounted, so packaging needs neither root nor loop devices.
 * - **Vagrant logs in as it always does.** A NoCloud seed written into the image
 *   (/var/lib/cloud/seed/nocloud) has cloud-init make the user `vagrant` with
 *   passwordless sudo and Vagrant's well-known insecure public key, new SSH host keys,
 *   and DHCP on the first network interface. That is Vagrant's convention: on the first
 *   `vagrant up`, Vagrant replaces the insecure key with a key pair of its own for that
 *   machine. The box therefore holds no private key at all, and no key of the host's.
 * - **The file** is a tar of metadata.json (provider libvirt, format qcow2, the disk's
 *   size in GiB), the disk as box.img, and a box Vagrantfile that copies the project
 *   folder in with rsync: the box has rsync, and no NFS client.
 */
import { readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../exec.js';
import { UserError } from '../errors.js';
import { convertImage, imageInfo } from '../qemu/img.js';
import { inPhase, type Reporter } from '../ui/reporter.js';
import { writeArchive } from './archive.js';
import { CORE_START_SECTOR, PARTITION_START_SECTOR, SECTOR_BYTES, masterBootRecord, placedCoreImage } from './boot-sector.js';
import { checkFileSystem, dumpFile, editImage, fileSize, listDir, mkdirRequests, writeFileRequests } from './debugfs.js';

/**
 * Vagrant's insecure public key, the one every public Vagrant box authorizes for its
 * first login. It is public by design (Vagrant replaces it at once); it is here, not read
 * from an installed Vagrant, so that a host without Vagrant can package for one.
 */
export const VAGRANT_INSECURE_PUBLIC_KEY =
  'ssh-rsa AAAAB3NzaC1yc2EAAAABIwAAAQEA6NF8iallvQVp22WDkTkyrtvp9eWW6A8YVr+kz4TjGYe7gHzIw+niNltGEFHzD8+v1I2YJ6oXevct1YeS0o9HZyN1Q9qgCgzUFtdOKLv6IedplqoPkcmF0aYet2PkEDo3MlTBckFXPITAMzF8dJSIFo9D8HfdOV0IAdx4O7PtixWKn5y2hMNG0zQPyUecp4pzC6kivAIhyfHilFR61RGL+GPXQ2MWZWFYbAGjyiYJnAmCP3NOTd0jMZEnDkbUvxhMmBYSdETk1rRgm+R4LOzFUGaHqHDLKLX+FIPKcF96hrucXzcWyLbIbEgE98OHlnVYCzRdK8jlqm8tehUc9c9WhQ== vagrant insecure public key';

export const VAGRANT_BOX_FILES = { metadata: 'metadata.json', disk: 'box.img', vagrantfile: 'Vagrantfile' } as const;

const SEED_DIR = '/var/lib/cloud/seed/nocloud';
const GIB = 1024 ** 3;

/** The NoCloud seed that makes Vagrant's login on first boot. Pure. */
export function vagrantSeed(box: { name: string; version: string }): { userData: string; metaData: string } {
  const userData = [
    '#cloud-config',
    `# Written by vmfile package --format vagrant-libvirt (box ${JSON.stringify(box.name)} ${JSON.stringify(box.version)}):`,
    "# Vagrant's login. Vagrant replaces the insecure key with a key of its own on first up.",
    'users:',
    '  - name: vagrant',
    '    gecos: Vagrant',
    '    shell: /bin/bash',
    '    sudo: "ALL=(ALL) NOPASSWD:ALL"',
    '    lock_passwd: true',
    '    ssh_authorized_keys:',
    `      - ${JSON.stringify(VAGRANT_INSECURE_PUBLIC_KEY)}`,
    'disable_root: true',
    '# New host keys for every machine made from the box.',
    'ssh_deletekeys: true',
    'ssh_genkeytypes: [ed25519, ecdsa, rsa]',
    '',
  ].join('\n');
  // One instance id for every machine from the box: each machine is a new disk, so its
  // first boot is cloud-init's first boot of that instance all the same.
  const metaData = `instance-id: ${JSON.stringify(`vagrant-${box.name}-${box.version}`)}\n`;
  return { userData, metaData };
}

/** The box's kernel command line with its root named by file system UUID (the disk's bus is the Vagrantfile's choice). Pure. */
export function vagrantCmdline(cmdline: string, rootUuid: string): string {
  const rest = cmdline.split(/\s+/).filter((arg) => arg !== '' && !arg.startsWith('root='));
  return [`root=UUID=${rootUuid}`, ...rest].join(' ');
}

/** GRUB's embedded config: boot the guest's own kernel and initrd from the first partition. Pure. */
export function grubConfig(kernel: string, initrd: string | undefined, cmdline: string): string {
  return ['set root=(hd0,msdos1)', `linux ${kernel} ${cmdline}`, ...(initrd === undefined ? [] : [`initrd ${initrd}`]), 'boot', ''].join('\n');
}

export interface VagrantBoxMetadata {
  provider: 'libvirt';
  format: 'qcow2';
  /** GiB. */
  virtual_size: number;
}

/** metadata.json of a vagrant-libvirt box (its v1 format, which every vagrant-libvirt reads). Pure. */
export function vagrantMetadata(virtualBytes: number): VagrantBoxMetadata {
  return { provider: 'libvirt', format: 'qcow2', virtual_size: Math.ceil(virtualBytes / GIB) };
}

/** The box's Vagrantfile, which Vagrant merges under the project's own. Pure. */
export function boxVagrantfile(box: { name: string; version: string; machine: string }): string {
  return [
    `# Box Vagrantfile of ${JSON.stringify(box.name)} ${JSON.stringify(box.version)}, written by vmfile package from machine ${JSON.stringify(box.machine)}.`,
    'Vagrant.configure("2") do |config|',
    '  # The box has rsync and no NFS client: the project folder is copied in, as vmfile does.',
    '  config.vm.synced_folder ".", "/vagrant", type: "rsync"',
    'end',
    '',
  ].join('\n');
}

/**
 * Writes the seed into the scrubbed file system image `raw`, checking that the image has
 * cloud-init to read it. Run before the free space is zeroed.
 */
export async function addVagrantLogin(raw: string, scratch: string, box: { name: string; version: string }, label: string, epoch: number): Promise<void> {
  if ((await fileSize(raw, '/usr/bin/cloud-init')) === undefined) {
    throw new UserError(`${label}: its disk has no cloud-init, which makes Vagrant's login in a vagrant-libvirt box`, { hint: 'package a machine made from a box with cloud-init (every box vmfile builds has it)' });
  }
  const seed = vagrantSeed(box);
  const userData = join(scratch, 'user-data');
  const metaData = join(scratch, 'meta-data');
  await writeFile(userData, seed.userData);
  await writeFile(metaData, seed.metaData);
  // Scrubbing emptied /var/lib/cloud; its seed directory is made afresh.
  const requests = ['/var/lib/cloud/seed', SEED_DIR].flatMap((dir) => mkdirRequests(dir, 0o755, epoch));
  requests.push(...writeFileRequests(`${SEED_DIR}/user-data`, userData, 0o600, epoch), ...writeFileRequests(`${SEED_DIR}/meta-data`, metaData, 0o644, epoch));
  await editImage(raw, requests);
  // debugfs reports failures with status 0: read the seed back.
  const check = join(scratch, 'user-data.check');
  if (!(await dumpFile(raw, `${SEED_DIR}/user-data`, check)) || (await readFile(check, 'utf8')) !== seed.userData) {
    throw new UserError(`${label}: could not write Vagrant's login into the disk copy; nothing was written`, { hint: 'run again with --debug and report it' });
  }
}

/** The guest's kernel and initrd as GRUB finds them: Debian's /vmlinuz links, else the only kernel in /boot. */
async function guestKernel(raw: string, label: string): Promise<{ kernel: string; initrd: string | undefined }> {
  const root = new Set((await listDir(raw, '/')).map((entry) => entry.name));
  if (root.has('vmlinuz')) return { kernel: '/vmlinuz', initrd: root.has('initrd.img') ? '/initrd.img' : undefined };
  const boot = (await listDir(raw, '/boot')).map((entry) => entry.name);
  const kernels = boot.filter((name) => name.startsWith('vmlinuz-'));
  if (kernels.length !== 1 || kernels[0] === undefined) {
    throw new UserError(`${label}: its disk has ${kernels.length === 0 ? 'no kernel' : `${kernels.length} kernels`} in /boot and no /vmlinuz link, so vmfile cannot tell which one a vagrant-libvirt box should boot`, {
      hint: 'inside the machine, leave one kernel installed (or restore the /vmlinuz link), halt it, and package again',
    });
  }
  const initrd = `initrd.img-${kernels[0].slice('vmlinuz-'.length)}`;
  return { kernel: `/boot/${kernels[0]}`, initrd: boot.includes(initrd) ? `/boot/${initrd}` : undefined };
}

/**
 * Shrinks the file system by the MiB that the partition table and GRUB take, so the
 * disk keeps the machine's size (4 GiB stays 4 GiB, not 4 GiB and 1 MiB, which Vagrant
 * would round up to 5). Resolves with the file system's new size in bytes.
 */
async function shrinkForPartitionTable(raw: string, label: string): Promise<number> {
  const head = PARTITION_START_SECTOR * SECTOR_BYTES;
  const bytes = (await stat(raw)).size;
  if (bytes % head !== 0 || bytes <= head) throw new UserError(`the disk copy of ${label} is ${bytes} bytes, not whole MiB`, { hint: 'run again with --debug and report it' });
  const target = bytes - head;
  // resize2fs wants a file system checked since it was last changed.
  await checkFileSystem(raw, { repair: true, purpose: `${label}: check the disk copy before making room for the boot loader` });
  await run('resize2fs', [raw, `${target / 1024}K`], { purpose: `shrink the file system of ${label} by the MiB its partition table and boot loader take` });
  await truncate(raw, target);
  return target;
}

async function fileSystemUuid(raw: string): Promise<string> {
  const { stdout } = await run('dumpe2fs', ['-h', raw], { purpose: `read the file system UUID of ${raw}` });
  const uuid = /^Filesystem UUID:\s+([0-9a-f-]{36})$/m.exec(stdout)?.[1];
  if (uuid === undefined) throw new UserError(`the disk copy ${raw} has no file system UUID`, { hint: 'run again with --debug and report it' });
  return uuid;
}

export interface VagrantBoxSpec {
  /** The scrubbed, zeroed file system image (with the seed from addVagrantLogin). */
  raw: string;
  staging: string;
  cmdline: string;
  box: { name: string; version: string; machine: string };
  output: string;
  mtime: number;
  label: string;
  reporter: Reporter;
}

/** Makes the bootable disk and writes the .box; resolves with the disk's metadata. */
export async function writeVagrantLibvirtBox(spec: VagrantBoxSpec): Promise<VagrantBoxMetadata> {
  const { raw, staging, reporter } = spec;
  const machine = spec.box.machine;
  const { kernel, initrd } = await guestKernel(raw, spec.label);
  const config = join(staging, 'grub-early.cfg');
  await writeFile(config, grubConfig(kernel, initrd, vagrantCmdline(spec.cmdline, await fileSystemUuid(raw))));
  const core = join(staging, 'core.img');
  await run('grub-mkimage', ['-O', 'i386-pc', '-c', config, '-p', '/boot/grub', '-o', core, 'biosdisk', 'part_msdos', 'ext2', 'linux', 'boot', 'normal', 'echo', 'test'], {
    purpose: `make the boot loader for the vagrant-libvirt box of ${spec.label}`,
  });
  const disk = join(staging, 'bootable.raw');
  const fsBytes = await shrinkForPartitionTable(raw, spec.label);
  await inPhase(reporter, machine, 'Making the copy a disk that boots itself (MBR, GRUB, one partition)', async () => {
    const signature = Number.parseInt((await fileSystemUuid(raw)).slice(0, 8), 16);
    const mbr = masterBootRecord(await readFile('/usr/lib/grub/i386-pc/boot.img'), fsBytes / SECTOR_BYTES, signature);
    const coreImage = placedCoreImage(await readFile(core));
    const head = Buffer.alloc(PARTITION_START_SECTOR * SECTOR_BYTES);
    mbr.copy(head, 0);
    coreImage.copy(head, CORE_START_SECTOR * SECTOR_BYTES);
    await writeFile(disk, head);
    await run('dd', [`if=${raw}`, `of=${disk}`, 'bs=1M', `seek=${PARTITION_START_SECTOR / 2048}`, 'conv=notrunc,sparse', 'status=none'], {
      purpose: `copy the file system of ${spec.label} into its partition`,
    });
  });
  await rm(raw, { force: true });
  const image = join(staging, VAGRANT_BOX_FILES.disk);
  const size = (await stat(disk)).size;
  await inPhase(reporter, machine, 'Converting the disk to qcow2', (phase) =>
    convertImage(disk, image, 'qcow2', { sourceFormat: 'raw', purpose: `convert the disk of ${spec.label}`, onProgress: (fraction) => phase.measure(fraction, size) }),
  );
  const metadata = vagrantMetadata((await imageInfo(image, 'qcow2')).virtualSize);
  await writeFile(join(staging, VAGRANT_BOX_FILES.metadata), `${JSON.stringify(metadata)}\n`);
  await writeFile(join(staging, VAGRANT_BOX_FILES.vagrantfile), boxVagrantfile(spec.box));
  await inPhase(reporter, machine, `Writing ${spec.output}`, () =>
    writeArchive(staging, [VAGRANT_BOX_FILES.metadata, VAGRANT_BOX_FILES.vagrantfile, VAGRANT_BOX_FILES.disk], spec.output, { mtime: spec.mtime }),
  );
  return metadata;
}

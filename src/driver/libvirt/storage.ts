/**
 * Volumes in the host's storage pool: the box, uploaded once per host, and per machine
 * an overlay over it and a cloud-init seed ISO.
 *
 * A box's volumes are named by its disk digest, so every machine of that box on that
 * host shares them and a changed box is a new set. libvirt cannot rename a volume, so an
 * upload is known whole by a marker volume written after it: volumes without their
 * marker (an upload cut short) are deleted and uploaded again.
 */
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { InstalledBox } from '../../box/store.js';
import { run } from '../../exec.js';
import { UserError } from '../../errors.js';
import { SEED_FILES } from '../../cloudinit/seed.js';
import { withLock } from '../../store/lock.js';
import { ensureSocketDir, runtimeDir } from '../../store/socket.js';
import { convertImage } from '../../qemu/img.js';
import { parseLibvirtUri } from '../../vmfile/libvirt-uri.js';
import { escapeXml } from './domain.js';
import { NO_VOLUME, virsh, virshMaybe, type LibvirtHost } from './virsh.js';
import type { Phase } from '../../ui/reporter.js';

export interface BoxVolumes {
  disk: string;
  kernel?: string;
  initrd?: string;
}

export function boxVolumeNames(box: InstalledBox): BoxVolumes & { marker: string } {
  const base = `vmfile-box-${box.metadata.disk.sha256.slice(0, 16)}`;
  const boot = box.metadata.boot;
  return {
    disk: `${base}.qcow2`,
    ...(boot?.type === 'kernel' ? { kernel: `${base}.kernel`, ...(boot.initrd === undefined ? {} : { initrd: `${base}.initrd` }) } : {}),
    marker: `${base}.complete`,
  };
}

/** The pool must exist and be active; vmfile does not create or start pools on someone's host. */
export async function checkPool(host: LibvirtHost): Promise<void> {
  const info = await virsh(host, ['pool-info', host.pool], { purpose: `look up storage pool ${host.pool}` });
  if (!/^State:\s+running/m.test(info)) {
    throw new UserError(`storage pool "${host.pool}" on libvirt host ${host.uri} is not active`, { hint: `start it there: virsh -c ${host.uri} pool-start ${host.pool}` });
  }
}

export async function volumeNames(host: LibvirtHost): Promise<Set<string>> {
  // "NAME PATH" per line (virsh -q: no header); vmfile's volume names have no spaces.
  const out = await virsh(host, ['vol-list', host.pool], { purpose: `list the volumes of pool ${host.pool}` });
  return new Set(out.split('\n').map((line) => line.trim().split(/\s+/)[0] ?? '').filter((name) => name !== ''));
}

export async function volumePath(host: LibvirtHost, volume: string): Promise<string> {
  return (await virsh(host, ['vol-path', '--pool', host.pool, volume], { purpose: `find volume ${volume}` })).trim();
}

/**
 * Uploads the box's disk (and kernel, initrd) unless the host has them whole already.
 * Machines started together upload a box once: the upload holds a lock on this host,
 * by box and not by URI, since two URIs can name one libvirt (then the second finds it done).
 */
export async function ensureBoxVolumes(host: LibvirtHost, box: InstalledBox, phase?: Phase): Promise<BoxVolumes> {
  return withLocalLock(`libvirt-box-${box.metadata.disk.sha256.slice(0, 16)}`, `box ${box.metadata.name} ${box.metadata.version}`, `upload it to libvirt host ${host.uri}`, () => uploadBoxOnce(host, box, phase), 3_600_000);
}

/** Runs `fn` holding a lock on this workstation (a private file under the runtime directory). */
export async function withLocalLock<T>(name: string, what: string, operation: string, fn: () => Promise<T>, waitMs: number): Promise<T> {
  const lock = join(runtimeDir(), `${name}.lock`);
  await ensureSocketDir(lock);
  return withLock(lock, what, operation, fn, { waitMs });
}

/** A volume's size and how much of it is written, in bytes (NaN where virsh did not say). */
async function volumeBytes(host: LibvirtHost, name: string, purpose: string, timeoutMs?: number): Promise<{ capacity: number; allocation: number }> {
  const info = await virsh(host, ['vol-info', '--bytes', '--pool', host.pool, name], { purpose, ...(timeoutMs === undefined ? {} : { timeoutMs }) });
  const field = (label: string) => Number(new RegExp(`^${label}:\\s+(\\d+)`, 'm').exec(info)?.[1] ?? Number.NaN);
  return { capacity: field('Capacity'), allocation: field('Allocation') };
}

async function uploadBoxOnce(host: LibvirtHost, box: InstalledBox, phase?: Phase): Promise<BoxVolumes> {
  const names = boxVolumeNames(box);
  const have = await volumeNames(host);
  const { marker, ...volumes } = names;
  const files: [string, string][] = [[volumes.disk, box.paths.disk]];
  if (volumes.kernel !== undefined) files.push([volumes.kernel, box.paths.kernel]);
  if (volumes.initrd !== undefined) files.push([volumes.initrd, box.paths.initrd]);
  if (have.has(marker) && files.every(([name]) => have.has(name))) return volumes;
  for (const name of [marker, ...files.map(([volume]) => volume)]) if (have.has(name)) await deleteVolume(host, name);
  for (const [name, file] of files) {
    phase?.progress(`uploading ${name} to pool ${host.pool} on ${host.uri} (once per host)`);
    await uploadVolume(host, name, file, phase);
  }
  await virsh(host, ['vol-create-as', host.pool, marker, '0', '--format', 'raw'], { purpose: `mark box ${box.metadata.name} ${box.metadata.version} as uploaded` });
  return volumes;
}

/**
 * A volume of the file's size, then the file's bytes into it (libvirt streams them to a
 * remote host). virsh reports no progress, so the volume's allocation on the host is
 * asked for every second and drawn as a bar.
 */
export async function uploadVolume(host: LibvirtHost, name: string, file: string, phase?: Phase): Promise<void> {
  const { size } = await stat(file);
  await virsh(host, ['vol-create-as', host.pool, name, String(Math.max(size, 1)), '--format', 'raw'], { purpose: `create volume ${name}` });
  const upload = virsh(host, ['vol-upload', '--pool', host.pool, name, file], { purpose: `upload ${name}`, timeoutMs: 3_600_000 });
  if (phase === undefined || size < 16 * 1024 * 1024) {
    await upload;
    return;
  }
  const allocation = async () => (await volumeBytes(host, name, `follow the upload of ${name}`, 30_000).catch(() => ({ allocation: Number.NaN }))).allocation;
  await pollWhile(upload, allocation, size, (fraction) => phase.measure(fraction, size));
}

export async function deleteVolume(host: LibvirtHost, name: string): Promise<void> {
  await virshMaybe(host, ['vol-delete', '--pool', host.pool, name], NO_VOLUME, { purpose: `delete volume ${name}` });
}

/** The machine's disk: a qcow2 overlay over the box's volume, replacing any earlier one. */
export async function createOverlayVolume(host: LibvirtHost, name: string, backing: string, bytes: number): Promise<void> {
  await deleteVolume(host, name);
  await virsh(host, ['vol-create-as', host.pool, name, String(bytes), '--format', 'qcow2', '--backing-vol', backing, '--backing-vol-format', 'qcow2'], {
    purpose: `create disk ${name}`,
  });
}

/** The NoCloud seed (SEED_FILES in `seedDir`) as an ISO 9660 volume labelled cidata, replacing any earlier one. */
export async function uploadSeed(host: LibvirtHost, name: string, seedDir: string): Promise<void> {
  const scratch = await mkdtemp(join(seedDir, '..', 'seed-iso-'));
  try {
    const iso = join(scratch, 'seed.iso');
    await run('genisoimage', ['-quiet', '-output', iso, '-volid', 'cidata', '-joliet', '-rock', ...SEED_FILES.map((file) => join(seedDir, file))], {
      purpose: 'make the cloud-init seed ISO',
    });
    await deleteVolume(host, name);
    await uploadVolume(host, name, iso);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/**
 * A machine's disk on another host, flattened there and brought here as a raw image:
 * libvirt copies the overlay with its backing into a new raw volume in the pool (one
 * qemu-img convert on that host), which is downloaded sparse and then deleted. Progress
 * is the file here against the volume's allocation there.
 */
/**
 * The volume `disk` (with its backing folded in) as a raw image at `destination` here:
 * converted in place when the host is this one, else flattened there and downloaded.
 */
export async function exportVolume(host: LibvirtHost, disk: string, destination: string, purpose: string, onProgress?: (fraction: number) => void): Promise<void> {
  if (!parseLibvirtUri(host.uri).local) {
    await downloadFlattened(host, disk, destination, onProgress);
    return;
  }
  await convertImage(await volumePath(host, disk), destination, 'raw', { sourceFormat: 'qcow2', purpose, ...(onProgress === undefined ? {} : { onProgress }) });
}

async function downloadFlattened(host: LibvirtHost, disk: string, destination: string, onProgress?: (fraction: number) => void): Promise<void> {
  const flat = `${disk.replace(/\.qcow2$/, '')}-export.raw`;
  const { capacity } = await volumeBytes(host, disk, `look up disk ${disk}`);
  if (!Number.isFinite(capacity)) throw new UserError(`libvirt host ${host.uri} did not say how large disk ${disk} is`, { hint: `look at it with: virsh -c ${host.uri} vol-info --pool ${host.pool} ${disk}` });
  const xml = join(dirname(destination), `${flat}.xml`);
  await writeFile(xml, `<volume>\n  <name>${escapeXml(flat)}</name>\n  <capacity unit='bytes'>${capacity}</capacity>\n  <target><format type='raw'/></target>\n</volume>\n`, { mode: 0o600 });
  await deleteVolume(host, flat);
  try {
    await virsh(host, ['vol-create-from', host.pool, xml, disk, '--inputpool', host.pool], { purpose: `flatten disk ${disk} into ${flat}`, timeoutMs: 3_600_000 });
    const allocated = (await volumeBytes(host, flat, `look up ${flat}`)).allocation;
    const download = virsh(host, ['vol-download', '--sparse', '--pool', host.pool, flat, destination], { purpose: `download ${flat}`, timeoutMs: 3_600_000 });
    if (onProgress === undefined || !(allocated > 0)) await download;
    else await pollWhile(download, () => stat(destination).then((s) => s.blocks * 512, () => 0), allocated, onProgress);
  } finally {
    await rm(xml, { force: true });
    await deleteVolume(host, flat);
  }
}

/** Asks how many bytes are done every second while `work` runs, and reports them as a fraction of `total`. */
async function pollWhile(work: Promise<unknown>, done: () => Promise<number>, total: number, report: (fraction: number) => void): Promise<void> {
  let finished = false;
  const watch = (async () => {
    while (!finished) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const bytes = await done();
      if (!finished && Number.isFinite(bytes)) report(Math.min(1, bytes / total));
    }
  })();
  try {
    await work;
  } finally {
    finished = true;
    await watch;
  }
}

/**
 * Whether a guest's root file system fills the machine's disk, and how to make it.
 *
 * Design note. `disk:` makes the machine's disk that size (qemu-img, at create), but the
 * root partition and file system inside stay the box's size unless something in the guest
 * grows them: cloud-init's growpart and resizefs do where the box has both; nothing does in
 * a Vagrant box without cloud-init or an image without cloud-guest-utils. So on the first
 * boot of a machine made over its box, vmfile looks (ROOT_DISK_PROBE, one command over SSH:
 * findmnt and lsblk as JSON, the partitions' sectors from sysfs, which tools exist) and,
 * when the root file system falls short of its disk, looks again as root and grows it
 * with what Debian, Ubuntu and RHEL-like guests have without cloud-guest-utils: sfdisk
 * (for GPT the backup header is first moved to the new end of the disk), else growpart,
 * else, for an MBR primary partition, the 4-byte size of its table entry written by dd
 * once the entry is checked to be the one probed; then partx tells the kernel, and
 * resize2fs (ext2/3/4) or xfs_growfs grow the file system online.
 * Only a plain partition of the virtio disk that is the last on it (or the whole disk) is
 * touched. LVM, btrfs, a partition with another after it, an unknown table, a missing
 * tool: the plan says why and what to do instead, and the start goes on. Nothing here
 * shrinks anything. What the guest prints is untrusted: it is parsed with zod, device
 * names must be kernel names of the virtio disk, and every word of the script is quoted.
 * Deciding is pure (planRootGrowth); guest/grow-root.ts runs it.
 */
import { z } from 'zod';
import { shellCommand, shellQuote } from '../ssh/quote.js';
import { formatSize } from '../vmfile/size.js';

/** Tools the plans use, looked for in root's PATH. */
const TOOLS = ['sfdisk', 'growpart', 'partx', 'dd', 'od', 'resize2fs', 'xfs_growfs'] as const;
export type Tool = (typeof TOOLS)[number];

const SECTION = '@@vmfile@@';

/** Prints four sections: findmnt of /, lsblk of every device, each partition's number, start and size, and the tools found. */
const PROBE_SCRIPT = [
  'PATH="$PATH:/usr/sbin:/sbin"',
  'findmnt --json --bytes --output SOURCE,FSTYPE,SIZE,MAJ:MIN --mountpoint /',
  `echo ${SECTION}`,
  'lsblk --json --list --bytes --output NAME,KNAME,MAJ:MIN,TYPE,SIZE,PKNAME,PTTYPE',
  `echo ${SECTION}`,
  // read, not cat: no process per number (each costs under TCG).
  'for d in /sys/class/block/*; do [ -r "$d/partition" ] && read -r n <"$d/partition" && read -r s <"$d/start" && read -r z <"$d/size" && echo "${d##*/} $n $s $z"; done',
  `echo ${SECTION}`,
  `for t in ${TOOLS.join(' ')}; do command -v "$t" >/dev/null 2>&1 && echo "$t"; done`,
  'true',
].join('\n');

/**
 * As the login user: enough to tell a root that fills its disk, which is most first boots
 * (sudo alone cost a few tenths of a second under TCG). Only the partition table's type
 * can be missing, where udev has not recorded it; the growth is planned from the next.
 */
export const ROOT_DISK_PROBE = `sh -c ${shellQuote(PROBE_SCRIPT)}`;
/** As root, which reads the partition table itself: before anything is grown. */
export const ROOT_DISK_PROBE_AS_ROOT = `sudo -n sh -c ${shellQuote(PROBE_SCRIPT)}`;

/** Older util-linux prints numbers in JSON as strings. */
const bytes = z.union([z.number().int().nonnegative(), z.string().regex(/^\d{1,19}$/).transform(Number)]).pipe(z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER));
const kernelName = z.string().regex(/^[A-Za-z0-9._-]{1,64}$/);

const findmntSchema = z.object({
  filesystems: z.array(z.object({ source: z.string().max(4096), fstype: z.string().max(64), size: bytes, 'maj:min': z.string().max(32) })).min(1),
});

const lsblkSchema = z.object({
  blockdevices: z
    .array(
      z.object({
        name: z.string().max(256),
        kname: kernelName,
        'maj:min': z.string().max(32),
        type: z.string().max(32),
        size: bytes,
        pkname: kernelName.nullable().optional(),
        pttype: z.string().max(32).nullable().optional(),
      }),
    )
    .max(4096),
});

export interface BlockDevice {
  kname: string;
  type: string;
  size: number;
  /** The device it is on (a partition's disk, a logical volume's physical volume). */
  parent?: string;
  /** The partition table it has (a disk) or is in (a partition): gpt, dos. */
  table?: string;
}

export interface Partition {
  kname: string;
  number: number;
  /** In 512-byte sectors, as the kernel counts them. */
  start: number;
  sectors: number;
}

/** What the probe saw. */
export interface RootDisk {
  fs: { source: string; type: string; size: number; majMin: string };
  devices: readonly (BlockDevice & { majMin: string })[];
  partitions: readonly Partition[];
  tools: ReadonlySet<Tool>;
}

/** The probe's output as data, or why it cannot be read (a guest without findmnt --json, say). */
export function parseRootDisk(output: string): RootDisk | { unreadable: string } {
  const [mounts, blocks, parts, tools] = output.split(`${SECTION}\n`);
  if (mounts === undefined || blocks === undefined || parts === undefined || tools === undefined) return { unreadable: 'the probe printed fewer than four sections' };
  const json = (text: string): unknown => {
    try {
      return JSON.parse(text);
    } catch {
      return undefined;
    }
  };
  const mount = findmntSchema.safeParse(json(mounts));
  if (!mount.success) return { unreadable: 'findmnt --json gave no root file system' };
  const listed = lsblkSchema.safeParse(json(blocks));
  if (!listed.success) return { unreadable: 'lsblk --json gave no block devices' };
  const [root] = mount.data.filesystems;
  if (root === undefined) return { unreadable: 'findmnt --json gave no root file system' };
  const partitions = parts.split('\n').flatMap((line) => {
    const match = /^([A-Za-z0-9._-]{1,64}) (\d{1,4}) (\d{1,19}) (\d{1,19})$/.exec(line.trim());
    if (match === null) return [];
    const [, kname = '', number, start, sectors] = match;
    return [{ kname, number: Number(number), start: Number(start), sectors: Number(sectors) }];
  });
  return {
    fs: { source: root.source, type: root.fstype, size: root.size, majMin: root['maj:min'] },
    devices: listed.data.blockdevices.map((device) => ({
      kname: device.kname,
      majMin: device['maj:min'],
      type: device.type,
      size: device.size,
      ...(device.pkname ? { parent: device.pkname } : {}),
      ...(device.pttype ? { table: device.pttype } : {}),
    })),
    partitions: partitions.filter((p) => Number.isSafeInteger(p.start) && Number.isSafeInteger(p.sectors)),
    tools: new Set(tools.split('\n').flatMap((line) => TOOLS.filter((tool) => tool === line.trim()))),
  };
}

/** Space after the last partition that counts as unused: more than alignment and GPT's backup table leave. */
export const SLACK = 16 * 1024 ** 2;
/** A file system smaller than this share of its partition was not grown (ext4's own overhead stays under 6%). */
const FILLED = 0.9;
const SECTOR = 512;
const MBR_LIMIT = 2 ** 32 - 1;

export type PartitionGrowth =
  | { by: 'sfdisk'; table: 'gpt' | 'dos' }
  | { by: 'growpart' }
  /** The size field of the MBR entry, written by dd after checking it still holds `start` and `sectors`. */
  | { by: 'mbr-entry'; start: number; sectors: number; newSectors: number };

export type RootGrowthPlan =
  | { kind: 'fills'; fsSize: number; diskSize: number }
  | {
      kind: 'grow';
      fsSize: number;
      diskSize: number;
      disk: string;
      /** The root file system's device (the partition, or the disk itself). */
      device: string;
      partition?: { number: number } & PartitionGrowth;
      fs: 'resize2fs' | 'xfs_growfs';
      /** For the user: what grows how. */
      summary: string;
    }
  | { kind: 'cannot'; fsSize: number; diskSize: number; reason: string; hint: string };

/** What to do about the root file system; pure. */
export function planRootGrowth(seen: RootDisk): RootGrowthPlan {
  const { fs } = seen;
  const byName = new Map(seen.devices.map((device) => [device.kname, device]));
  // btrfs reports an anonymous device number; its source names the device ("/dev/vda2[/@]").
  const named = /^\/dev\/([A-Za-z0-9._-]+)(\[.*\])?$/.exec(fs.source)?.[1];
  const device = seen.devices.find((d) => d.majMin === fs.majMin) ?? seen.devices.find((d) => d.kname === named);
  let disk = device;
  for (let depth = 0; disk?.parent !== undefined && depth < 8; depth++) disk = byName.get(disk.parent);
  const on = `${fs.type} on ${fs.source}`;
  if (device === undefined || disk === undefined || disk.parent !== undefined) {
    // Say so only where a virtio disk has space no partition takes: that is what disk: made.
    const grown = seen.devices.find((d) => d.type === 'disk' && /^vd[a-z]{1,3}$/.test(d.kname) && tailOf(d, seen) > SLACK);
    if (grown === undefined) return { kind: 'fills', fsSize: fs.size, diskSize: 0 };
    return { kind: 'cannot', fsSize: fs.size, diskSize: grown.size, reason: `the root file system (${on}) is not on a disk vmfile can see, and /dev/${grown.kname} has space no partition takes`, hint: 'grow the root file system with the guest\'s own tools' };
  }
  const diskSize = disk.size;
  const cannot = (reason: string, hint: string): RootGrowthPlan => ({ kind: 'cannot', fsSize: fs.size, diskSize, reason, hint });
  const onDisk = partitionsOf(disk, seen);
  const unused = tailOf(disk, seen) > SLACK;
  const rootPartition = device.type === 'part' && device.parent === disk.kname ? onDisk.find((p) => p.kname === device.kname) : undefined;

  if (device !== disk && rootPartition === undefined) {
    // LVM, RAID, encryption: the disk's new space is behind the partition holding them, and after it come layers vmfile does not manage.
    if (!unused) return { kind: 'fills', fsSize: fs.size, diskSize };
    return cannot(`the root file system (${on}) is on ${device.type === 'lvm' ? 'LVM' : `a ${device.type} device`}, which vmfile does not grow`, `grow the last partition of /dev/${disk.kname} and what is on it yourself (for LVM: growpart or sfdisk, pvresize, then lvextend -r -l +100%FREE ${fs.source})`);
  }
  const growPartition = rootPartition !== undefined && unused;
  if (rootPartition !== undefined && unused && onDisk.some((p) => p.start > rootPartition.start)) {
    const after = onDisk.filter((p) => p.start > rootPartition.start).map((p) => `/dev/${p.kname}`);
    return cannot(`the root partition /dev/${rootPartition.kname} is followed by ${after.join(', ')}, so it cannot grow into the disk's new space`, 'move or remove the partitions after it, then grow the root partition and its file system');
  }
  const container = rootPartition === undefined ? diskSize : rootPartition.sectors * SECTOR;
  if (!growPartition && fs.size >= container * FILLED) return { kind: 'fills', fsSize: fs.size, diskSize };

  if (!/^vd[a-z]{1,3}$/.test(disk.kname)) return cannot(`the root file system (${on}) is on /dev/${disk.kname}, not on the machine's virtio disk`, 'grow it with the guest\'s own tools');
  const fsTool = ['ext2', 'ext3', 'ext4'].includes(fs.type) ? 'resize2fs' : fs.type === 'xfs' ? 'xfs_growfs' : undefined;
  const partPath = rootPartition === undefined ? `/dev/${disk.kname}` : `/dev/${rootPartition.kname}`;
  if (fsTool === undefined) {
    const then = fs.type === 'btrfs' ? 'sudo btrfs filesystem resize max /' : `the ${fs.type} tool that grows a mounted file system`;
    return cannot(`the root file system is ${fs.type}, which vmfile does not grow`, growPartition ? `grow partition ${partPath} (growpart or sfdisk), then ${then}` : `grow it: ${then}`);
  }
  if (!seen.tools.has(fsTool)) {
    return cannot(`the guest has no ${fsTool}`, `install ${fsTool === 'resize2fs' ? 'e2fsprogs' : 'xfsprogs'}, then run vmfile's growth by hand: ${growPartition ? `grow ${partPath}, then ` : ''}sudo ${fsTool === 'resize2fs' ? `resize2fs ${partPath}` : 'xfs_growfs /'}`);
  }
  const fsPart = { fs: fsTool, device: rootPartition?.kname ?? disk.kname, disk: disk.kname } as const;
  if (!growPartition || rootPartition === undefined) {
    return { kind: 'grow', fsSize: fs.size, diskSize, ...fsPart, summary: `${fs.type} on ${partPath} by ${fsTool}` };
  }

  const table = disk.table === 'gpt' ? 'gpt' : disk.table === 'dos' ? 'dos' : undefined;
  const tableName = table === 'gpt' ? 'GPT' : 'MBR';
  if (table === undefined) return cannot(`/dev/${disk.kname} has a partition table vmfile does not know (${disk.table ?? 'none reported'})`, `grow ${partPath} and its file system yourself`);
  if (table === 'dos' && rootPartition.number > 4) {
    return cannot(`the root partition ${partPath} is a logical partition of an MBR disk`, 'grow the extended partition, then the root partition and its file system, yourself (e.g. with parted or fdisk)');
  }
  const growth = ((): PartitionGrowth | undefined => {
    if (seen.tools.has('sfdisk') && seen.tools.has('partx')) return { by: 'sfdisk', table };
    if (seen.tools.has('growpart')) return { by: 'growpart' };
    if (table === 'dos' && ['partx', 'dd', 'od'].every((tool) => seen.tools.has(tool as Tool)) && rootPartition.start <= MBR_LIMIT) {
      return { by: 'mbr-entry', start: rootPartition.start, sectors: rootPartition.sectors, newSectors: Math.min(diskSize / SECTOR - rootPartition.start, MBR_LIMIT) };
    }
    return undefined;
  })();
  if (growth === undefined) {
    return cannot(`the guest has neither sfdisk (with partx) nor growpart to grow its ${tableName} partition ${partPath}`, `install fdisk (Debian, Ubuntu) or util-linux (RHEL-like), or cloud-guest-utils, then: sudo growpart /dev/${disk.kname} ${rootPartition.number} && sudo ${fsTool === 'resize2fs' ? `resize2fs ${partPath}` : 'xfs_growfs /'}`);
  }
  const how = growth.by === 'mbr-entry' ? 'its MBR entry' : growth.by;
  return { kind: 'grow', fsSize: fs.size, diskSize, ...fsPart, partition: { number: rootPartition.number, ...growth }, summary: `${tableName} partition ${partPath} by ${how}, ${fs.type} by ${fsTool}` };
}

function partitionsOf(disk: BlockDevice, seen: RootDisk): Partition[] {
  const byName = new Map(seen.devices.map((device) => [device.kname, device]));
  return seen.partitions.filter((p) => byName.get(p.kname)?.parent === disk.kname);
}

/** Bytes after a partitioned disk's last partition; none for a disk without partitions (a file system or volume on all of it). */
function tailOf(disk: BlockDevice, seen: RootDisk): number {
  const partitions = partitionsOf(disk, seen);
  if (partitions.length === 0) return 0;
  return disk.size - Math.max(...partitions.map((p) => (p.start + p.sectors) * SECTOR));
}

/** The commands that carry out a plan, as one `sudo sh -c` command line; each word quoted. */
export function growthCommand(plan: Extract<RootGrowthPlan, { kind: 'grow' }>): string {
  const disk = `/dev/${plan.disk}`;
  const lines = ['set -e'];
  const part = plan.partition;
  if (part !== undefined) {
    const number = String(part.number);
    if (part.by === 'sfdisk') {
      // Older sfdisk has no --relocate; its write below puts the backup header at the end anyway.
      if (part.table === 'gpt') lines.push(`if sfdisk --help | grep -q -- --relocate; then ${shellCommand(['sfdisk', '--relocate', 'gpt-bak-std', disk])}; fi`);
      lines.push(`echo ,+ | ${shellCommand(['sfdisk', '--force', '--no-reread', '-N', number, disk])}`);
      lines.push(shellCommand(['partx', '--update', '--nr', number, disk]));
    } else if (part.by === 'growpart') {
      lines.push(shellCommand(['growpart', disk, number]));
    } else {
      const entry = 446 + 16 * (part.number - 1);
      const expected = ` ${part.start} ${part.sectors}`;
      lines.push(`[ "$(${shellCommand(['dd', `if=${disk}`, 'bs=1', `skip=${entry + 8}`, 'count=8'])} 2>/dev/null | od -An -tu4 | tr -s ' ')" = ${shellQuote(expected)} ] || { echo 'the MBR entry is not the one probed' >&2; exit 3; }`);
      lines.push(`printf ${shellQuote(octalLe32(part.newSectors))} | ${shellCommand(['dd', `of=${disk}`, 'bs=1', `seek=${entry + 12}`, 'count=4', 'conv=notrunc,fsync'])} 2>/dev/null`);
      lines.push(shellCommand(['partx', '--update', '--nr', number, disk]));
    }
  }
  lines.push(plan.fs === 'resize2fs' ? shellCommand(['resize2fs', `/dev/${plan.device}`]) : shellCommand(['xfs_growfs', '/']));
  lines.push('sync');
  return `sudo -n sh -c ${shellQuote(lines.join('\n'))}`;
}

/** A 32-bit little-endian number as printf's octal escapes (dash's printf has no \x). */
function octalLe32(value: number): string {
  return [0, 8, 16, 24].map((shift) => `\\${((value >>> shift) & 0xff).toString(8).padStart(3, '0')}`).join('');
}

/** "1.9GiB on a 6GiB disk", for messages. */
export function sizesSeen(plan: RootGrowthPlan): string {
  return `${formatSize(plan.fsSize)} on a ${formatSize(plan.diskSize)} disk`;
}

/** Guests as ROOT_DISK_PROBE sees them (guest/root-disk.ts), and the output it would print: for the tests of the plan and of its runner. */
const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const SECTION = '@@vmfile@@\n';

export interface Dev { name: string; type: string; size: number; pkname?: string; pttype?: string; majMin: string; kname?: string }
export interface Guest {
  root: { source: string; fstype: string; size: number; majMin: string };
  devices: Dev[];
  /** kname number startSector sectors */
  partitions: [string, number, number, number][];
  tools: string[];
}

export function probeOutput(guest: Guest): string {
  const findmnt = JSON.stringify({ filesystems: [{ source: guest.root.source, fstype: guest.root.fstype, size: guest.root.size, 'maj:min': guest.root.majMin }] }, null, 3);
  const lsblk = JSON.stringify({
    blockdevices: guest.devices.map((d) => ({ name: d.name, kname: d.kname ?? d.name, 'maj:min': d.majMin, type: d.type, size: d.size, pkname: d.pkname ?? null, pttype: d.pttype ?? null })),
  });
  const sysfs = guest.partitions.map((p) => p.join(' ')).join('\n');
  return `${findmnt}\n${SECTION}${lsblk}\n${SECTION}${sysfs}\n${SECTION}${guest.tools.join('\n')}\n`;
}

export const ALL = ['sfdisk', 'growpart', 'partx', 'dd', 'od', 'resize2fs', 'xfs_growfs'];
export const UTIL_LINUX = ['partx', 'dd', 'od', 'resize2fs', 'xfs_growfs'];

/** A 2 GiB box's disk grown to `disk`: GPT (bios boot, ESP, root as partition 3) or MBR (root as partition 1). */
export function guest(options: { table: 'gpt' | 'dos'; fs?: string; disk?: number; tools?: string[]; rootSectors?: number; fsSize?: number; after?: boolean }): Guest {
  const disk = options.disk ?? 6 * GiB;
  const gpt = options.table === 'gpt';
  const rootStart = gpt ? 135168 : 2048;
  const rootSectors = options.rootSectors ?? (2047 * MiB) / 512 - rootStart;
  const n = gpt ? 3 : 1;
  const partitions: Guest['partitions'] = [...(gpt ? ([['vda1', 1, 2048, 2048], ['vda2', 2, 4096, 131072]] as Guest['partitions']) : []), [`vda${n}`, n, rootStart, rootSectors]];
  if (options.after === true) partitions.push([`vda${n + 1}`, n + 1, rootStart + rootSectors, 2048 * 64]);
  return {
    root: { source: `/dev/vda${n}`, fstype: options.fs ?? 'ext4', size: options.fsSize ?? Math.round(rootSectors * 512 * 0.95), majMin: `254:${n}` },
    devices: [
      { name: 'vda', type: 'disk', size: disk, majMin: '254:0', pttype: options.table },
      ...partitions.map(([name, number, , sectors]) => ({ name, type: 'part', size: sectors * 512, pkname: 'vda', pttype: options.table, majMin: `254:${number}` })),
    ],
    partitions,
    tools: options.tools ?? ALL,
  };
}


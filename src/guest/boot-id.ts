/**
 * Where a guest's kernel keeps its boot ID, found in the warm state's generic machine
 * before its memory is saved, so that each machine started from that memory can be given
 * its own ID (driver/qemu/boot-id.ts).
 *
 * The ID is the kernel's `sysctl_bootid`. /proc/kallsyms gives its virtual address and
 * that of `_text`, the start of the kernel image; /proc/iomem gives the physical address
 * the image was loaded at ("Kernel code" starts at `_text`). The image is one physically
 * contiguous piece, so the ID's physical address is that start plus its offset in the
 * image. Both files show real addresses only to root, hence sudo. What the guest prints
 * is untrusted: the result must land inside the image's data or bss, or there is none.
 */
import type { BootIdLocation } from '../store/machine.js';

/** Prints the boot ID, the two symbols and the kernel image's physical ranges. */
export const BOOT_ID_PROBE = "sudo -n sh -c 'cat /proc/sys/kernel/random/boot_id; grep -E \" (_text|sysctl_bootid)$\" /proc/kallsyms; grep -E \": Kernel (code|data|bss)$\" /proc/iomem'";

const SIZE = 16n;

/** The location from BOOT_ID_PROBE's output, or undefined when it does not show one. */
export function parseBootIdLocation(output: string): BootIdLocation | undefined {
  const lines = output.split('\n').map((line) => line.trim());
  const value = lines.find((line) => /^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$/.test(line))?.replaceAll('-', '');
  const symbol = (name: string): bigint | undefined => {
    const found = lines.map((line) => /^([0-9a-f]{16}) [a-zA-Z] (\S+)$/.exec(line)).find((match) => match?.[2] === name);
    return found?.[1] === undefined ? undefined : BigInt(`0x${found[1]}`);
  };
  const ranges = lines.flatMap((line) => {
    const match = /^([0-9a-f]+)-([0-9a-f]+) : Kernel (code|data|bss)$/.exec(line);
    return match === null ? [] : [{ kind: match[3], start: BigInt(`0x${match[1]}`), end: BigInt(`0x${match[2]}`) }];
  });
  const text = symbol('_text');
  const bootId = symbol('sysctl_bootid');
  const code = ranges.find((range) => range.kind === 'code');
  // Unprivileged readers see zeros for every address.
  if (value === undefined || text === undefined || bootId === undefined || code === undefined || text === 0n || bootId < text || code.start === 0n) return undefined;
  const address = code.start + (bootId - text);
  const inData = ranges.some((range) => range.kind !== 'code' && range.start <= address && address + SIZE - 1n <= range.end);
  if (!inData || address > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
  return { address: Number(address), value };
}

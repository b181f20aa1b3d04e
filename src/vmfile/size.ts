/** Sizes in a Vmfile are strings like "2GiB" or "512MiB"; K/M/G/T alone mean KiB.. TiB as in QEMU. */
const UNITS: Record<string, number> = {
  B: 1,
  K: 1024,
  KIB: 1024,
  M: 1024 ** 2,
  MIB: 1024 ** 2,
  G: 1024 ** 3,
  GIB: 1024 ** 3,
  T: 1024 ** 4,
  TIB: 1024 ** 4,
};

const SIZE_PATTERN = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/;

/** Bytes for a size string (Infinity when beyond exact integers), or undefined when it is not a size. */
export function parseSize(text: string): number | undefined {
  const match = SIZE_PATTERN.exec(text);
  if (match === null) return undefined;
  const [, amount, unit] = match;
  const factor = UNITS[(unit ?? '').toUpperCase() || 'B'];
  if (factor === undefined || amount === undefined) return undefined;
  const bytes = Math.round(Number(amount) * factor);
  return Number.isSafeInteger(bytes) ? bytes : Number.POSITIVE_INFINITY;
}

/** Human form used in messages and status output: 1073741824 -> "1GiB". */
export function formatSize(bytes: number): string {
  for (const [unit, factor] of [
    ['TiB', 1024 ** 4],
    ['GiB', 1024 ** 3],
    ['MiB', 1024 ** 2],
    ['KiB', 1024],
  ] as const) {
    if (bytes >= factor) {
      const value = bytes / factor;
      return `${Number.isInteger(value) ? value : value.toFixed(1)}${unit}`;
    }
  }
  return `${bytes}B`;
}

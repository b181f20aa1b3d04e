/** "1 CPU", "2 CPUs": a count with its noun, in the plural unless it is one. */
export function counted(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

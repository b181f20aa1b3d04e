/** One line for a warm state or provisioning layer, shared by cache list and prune. */
import type { CacheEntry } from '../services/cache.js';
import { formatSize } from '../vmfile/size.js';
import { counted } from '../ui/words.js';

export function describeEntry(entry: CacheEntry, now = Date.now()): string {
  const what = entry.layer === undefined ? `warm state of box ${entry.box.name} ${entry.box.version} (${counted(entry.shape.cpus, 'CPU')}, ${formatSize(entry.shape.memory)})` : `layer of step "${entry.layer.step.name}" (over ${entry.layer.parent.slice(0, 12)})`;
  return `${entry.key.slice(0, 12)}  ${what}; ${formatSize(entry.bytes)}, made ${age(now - Date.parse(entry.createdAt))} ago`;
}

function age(ms: number): string {
  const minutes = Math.max(0, Math.round(ms / 60_000));
  if (minutes < 60) return counted(minutes, 'minute');
  const hours = Math.round(minutes / 60);
  return hours < 48 ? counted(hours, 'hour') : counted(Math.round(hours / 24), 'day');
}

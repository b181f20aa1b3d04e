/**
 * A progress bar for long transfers and conversions: percent, bytes when known, rate
 * and time left. Pure: the console decides how often and where to draw it (in place on
 * a terminal, a plain line every tenth of the way otherwise).
 */
import { formatSize } from '../vmfile/size.js';

export interface ProgressSample {
  /** How far, 0..1. */
  fraction: number;
  /** Total bytes, when the work is a known number of bytes (shown with the rate). */
  totalBytes?: number;
  /** Milliseconds since the work started. */
  elapsedMs: number;
  /** How far it already was when it started (a resumed download): rate and time left count only what followed. */
  startFraction?: number;
}

const WIDTH = 24;

export function renderProgress(sample: ProgressSample): string {
  const fraction = Math.min(1, Math.max(0, sample.fraction));
  const filled = Math.round(fraction * WIDTH);
  const parts = [`[${'#'.repeat(filled)}${'.'.repeat(WIDTH - filled)}] ${(fraction * 100).toFixed(0).padStart(3)}%`];
  const seconds = sample.elapsedMs / 1000;
  const done = fraction - Math.min(fraction, Math.max(0, sample.startFraction ?? 0));
  if (sample.totalBytes !== undefined) {
    parts.push(`${formatSize(Math.round(fraction * sample.totalBytes))} of ${formatSize(sample.totalBytes)}`);
    if (seconds > 0.5) parts.push(`${formatSize(Math.round((done * sample.totalBytes) / seconds))}/s`);
  }
  if (done > 0.02 && fraction < 1 && seconds > 1) parts.push(`ETA ${formatDuration((seconds * (1 - fraction)) / done)}`);
  return parts.join(', ');
}

function formatDuration(seconds: number): string {
  if (seconds < 60) return `${Math.ceil(seconds)} s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes} min ${Math.round(seconds - minutes * 60)} s`;
}

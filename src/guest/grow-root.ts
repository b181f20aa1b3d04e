/**
 * The first-boot requirement "root file system fills the disk": probes the guest, grows
 * its root partition and file system when they fall short of the disk (the plan and why
 * are guest/root-disk.ts), and probes again to be sure. It never fails a start: what it
 * could not do is a notice naming the machine, the sizes seen and what to do.
 */
import type { SshSession } from '../ssh/client.js';
import { formatSize } from '../vmfile/size.js';
import { session, type GuestStart } from './guest-start.js';
import { growthCommand, parseRootDisk, planRootGrowth, ROOT_DISK_PROBE, ROOT_DISK_PROBE_AS_ROOT, sizesSeen, type RootGrowthPlan } from './root-disk.js';

export async function growRootFileSystem(c: GuestStart): Promise<void> {
  const phase = c.reporter.phase(c.machine.name, 'Checking that the root file system fills the disk');
  let outcome: { detail: string; problem?: string };
  try {
    outcome = await growIfShort(session(c), (text) => phase.progress(text));
  } catch (error) {
    outcome = { detail: 'not checked', problem: `vmfile could not check the root file system's size: ${error instanceof Error ? error.message : String(error)}` };
  }
  phase.done(outcome.detail);
  if (outcome.problem !== undefined) c.reporter.notice(`machine "${c.machine.name}": ${outcome.problem}`);
}

async function growIfShort(ssh: SshSession, progress: (text: string) => void): Promise<{ detail: string; problem?: string }> {
  const first = await look(ssh, ROOT_DISK_PROBE);
  const before = 'unreadable' in first || first.kind === 'fills' ? first : await look(ssh, ROOT_DISK_PROBE_AS_ROOT);
  if ('unreadable' in before) {
    return { detail: 'could not tell', problem: `vmfile could not see how the root file system lies on its disk (${before.unreadable}). If it is smaller than the disk, grow it with the guest's own tools` };
  }
  if (before.kind === 'fills') return { detail: `it does: ${sizesSeen(before)}` };
  if (before.kind === 'cannot') {
    return { detail: `it does not: ${sizesSeen(before)}`, problem: `the root file system is ${sizesSeen(before)}, and vmfile could not grow it: ${before.reason}. Try: ${before.hint}` };
  }
  progress(`growing ${before.summary}`);
  const result = await ssh.capture(growthCommand(before));
  const after = await look(ssh, ROOT_DISK_PROBE);
  if (result.code === 0 && !('unreadable' in after) && after.kind === 'fills') {
    return { detail: `grew it from ${formatSize(before.fsSize)} to ${sizesSeen(after)} (${before.summary})` };
  }
  const said = result.stderr.trim().split('\n').slice(-3).join(' / ');
  const now = 'unreadable' in after ? '' : ` It is now ${sizesSeen(after)}.`;
  return {
    detail: 'growing it failed',
    problem: `growing the root file system (${sizesSeen(before)}; ${before.summary}) failed with exit ${result.code}${said === '' ? '' : ` (${said})`}.${now} Try the same by hand over vmssh, or give the box cloud-init's growpart`,
  };
}

async function look(ssh: SshSession, command: string): Promise<RootGrowthPlan | { unreadable: string }> {
  const probe = await ssh.capture(command);
  if (probe.code !== 0) return { unreadable: `the probe exited ${probe.code}${probe.stderr.trim() === '' ? '' : `: ${probe.stderr.trim().split('\n').slice(-1).join('')}`}` };
  const seen = parseRootDisk(probe.stdout);
  return 'unreadable' in seen ? seen : planRootGrowth(seen);
}

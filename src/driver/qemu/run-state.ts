/**
 * A QEMU machine's run state over QMP: whether its CPUs run, continuing a guest that is
 * stopped, and stopping the process: the power button first where asked (only a guest
 * whose CPUs run can answer it), then QMP quit, then SIGKILL.
 */
import { killProcess, waitForExit } from '../../qemu/process.js';
import { withQmp } from '../../qmp/session.js';
import type { StopOptions } from '../driver.js';
import type { QemuFiles } from './files.js';

/** 'running', 'stopped' (CPUs stopped for any reason), or undefined when QEMU does not answer. */
export async function runState(files: Pick<QemuFiles, 'qmpSocket'>): Promise<'running' | 'stopped' | undefined> {
  try {
    const result = await withQmp(files.qmpSocket, (qmp) => qmp.execute<{ running?: boolean }>('query-status', {}, { timeoutMs: 1000 }), { timeoutMs: 1000 });
    return result.running === false ? 'stopped' : 'running';
  } catch {
    return undefined;
  }
}

/** Continues the guest when QEMU's status is one `stopped` accepts; false when it was not. */
export async function continueIf(files: Pick<QemuFiles, 'qmpSocket'>, stopped: (status: { running?: boolean; status?: string }) => boolean): Promise<boolean> {
  return withQmp(files.qmpSocket, async (qmp) => {
    const status = await qmp.execute<{ running?: boolean; status?: string }>('query-status', {}, { timeoutMs: 5000 });
    if (!stopped(status)) return false;
    await qmp.execute('cont', {}, { timeoutMs: 5000 });
    return true;
  });
}

export async function stopQemu(files: Pick<QemuFiles, 'qmpSocket' | 'overlay'>, pid: number, options: StopOptions): Promise<'clean' | 'forced'> {
  if (options.graceful && options.timeoutMs > 0 && (await runState(files)) === 'running' && (await command(files, 'system_powerdown'))) {
    const started = Date.now();
    const timer = setInterval(
      () => options.progress?.(`waiting for the guest to power off (${Math.round((Date.now() - started) / 1000)} s of ${options.timeoutMs / 1000} s)`),
      1000,
    );
    try {
      if (await waitForExit(pid, files.overlay, options.timeoutMs)) return 'clean';
    } finally {
      clearInterval(timer);
    }
  }
  await command(files, 'quit');
  if (await waitForExit(pid, files.overlay, 5000)) return 'forced';
  killProcess(pid, 'SIGKILL');
  await waitForExit(pid, files.overlay, 5000);
  return 'forced';
}

async function command(files: Pick<QemuFiles, 'qmpSocket'>, name: string): Promise<boolean> {
  try {
    await withQmp(files.qmpSocket, (qmp) => qmp.execute(name, {}, { timeoutMs: 3000 }), { timeoutMs: 3000 });
    return true;
  } catch {
    // QEMU already going away, or its monitor is stuck: the caller escalates.
    return false;
  }
}

/**
 * vmhalt: ACPI power button over QMP, wait for the guest to power off (QEMU exits on
 * its own), then `quit`, then SIGKILL if even that is ignored. The disk is only ever
 * written by the guest or QEMU, so every path leaves it consistent as far as the guest
 * allowed.
 */
import { rm } from 'node:fs/promises';
import { snapshotOffline } from '../qemu/img.js';
import { killProcess, waitForExit } from '../qemu/process.js';
import { SUSPEND_SNAPSHOT } from '../state/layout.js';
import { QmpClient } from '../qmp/client.js';
import { withMachineLock } from '../state/lock.js';
import { readMachineState, writeJsonAtomic } from '../state/machine.js';
import type { MachinePaths } from '../state/layout.js';
import type { Project } from '../vmfile/config.js';
import { machineStatus, selectMachines, type ServiceContext } from './machine.js';

export interface HaltOptions {
  project: Project;
  machines?: readonly string[];
  force: boolean;
  /** Seconds to wait for a clean shutdown before forcing. */
  timeout: number;
}

export interface HaltResult {
  machine: string;
  outcome: 'not created' | 'already halted' | 'clean' | 'forced';
  seconds: number;
}

export async function halt(options: HaltOptions, context: ServiceContext): Promise<HaltResult[]> {
  // Machines shut down in parallel: each waits for its own guest.
  return Promise.all(
    selectMachines(options.project, options.machines).map(async (machine): Promise<HaltResult> => {
      const status = await machineStatus(options.project.dir, machine.name);
      if (status.status === 'not created') {
        context.reporter.info(machine.name, 'not created; nothing to halt');
        return { machine: machine.name, outcome: 'not created', seconds: 0 };
      }
      return withMachineLock(status.paths.lock, machine.name, 'halt', async () => {
        const fresh = await machineStatus(options.project.dir, machine.name);
        if (fresh.status === 'suspended' && fresh.state !== undefined) {
          if (!options.force) {
            context.reporter.info(machine.name, 'is suspended (its memory is saved, QEMU is stopped): vmfile resume continues it; vmfile halt --force discards the saved memory');
            return { machine: machine.name, outcome: 'already halted' as const, seconds: 0 };
          }
          await snapshotOffline(fresh.paths.overlay, 'delete', SUSPEND_SNAPSHOT);
          const { suspendedAt: _at, ...halted } = fresh.state;
          await writeJsonAtomic(fresh.paths.state, halted);
          context.reporter.info(machine.name, 'saved memory discarded; the machine is halted');
          return { machine: machine.name, outcome: 'forced' as const, seconds: 0 };
        }
        if (fresh.pid === undefined) {
          context.reporter.info(machine.name, 'is not running (already halted)');
          await markHalted(fresh.paths);
          return { machine: machine.name, outcome: 'already halted' as const, seconds: 0 };
        }
        const started = performance.now();
        const phase = context.reporter.phase(machine.name, options.force ? 'Forcing power off' : 'Shutting down (ACPI power button)');
        const outcome = await stopQemu(fresh.paths, fresh.pid, options.force ? 0 : options.timeout * 1000, (text) => phase.progress(text));
        phase.done(outcome === 'clean' ? 'guest powered off' : 'forced');
        await markHalted(fresh.paths);
        return { machine: machine.name, outcome, seconds: (performance.now() - started) / 1000 };
      });
    }),
  );
}

/**
 * Stops a machine's QEMU: a clean powerdown within `cleanMs` (0 skips it), then QMP
 * quit, then SIGKILL. Resolves once the process is gone.
 */
export async function stopQemu(paths: MachinePaths, pid: number, cleanMs: number, progress: (text: string) => void = () => {}): Promise<'clean' | 'forced'> {
  if (cleanMs > 0) {
    const asked = await qmpCommand(paths, 'system_powerdown');
    if (asked) {
      const started = Date.now();
      const timer = setInterval(() => progress(`waiting for the guest to power off (${Math.round((Date.now() - started) / 1000)} s of ${cleanMs / 1000} s)`), 1000);
      try {
        if (await waitForExit(pid, paths.overlay, cleanMs)) return 'clean';
      } finally {
        clearInterval(timer);
      }
    }
  }
  await qmpCommand(paths, 'quit');
  if (await waitForExit(pid, paths.overlay, 5000)) return 'forced';
  killProcess(pid, 'SIGKILL');
  await waitForExit(pid, paths.overlay, 5000);
  return 'forced';
}

async function qmpCommand(paths: MachinePaths, command: string): Promise<boolean> {
  try {
    const qmp = await QmpClient.connect(paths.qmpSocket, { timeoutMs: 3000 });
    try {
      await qmp.execute(command, {}, { timeoutMs: 3000 });
    } finally {
      qmp.close();
    }
    return true;
  } catch {
    // QEMU already going away, or its monitor is stuck: the caller escalates.
    return false;
  }
}

/** Forget what only held while running (SSH port, pid, socket). */
export async function markHalted(paths: MachinePaths): Promise<void> {
  const state = await readMachineState(paths.state);
  if (state !== undefined && (state.sshPort !== undefined || state.accel !== undefined)) {
    const { sshPort: _port, accel: _accel, bootedAt: _booted, forwards: _forwards, ...rest } = state;
    await writeJsonAtomic(paths.state, rest);
  }
  await rm(paths.pidFile, { force: true });
  await rm(paths.qmpSocket, { force: true });
}

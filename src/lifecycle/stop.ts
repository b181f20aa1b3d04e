/**
 * Halting one machine, as vmhalt and reload do it: the ACPI power button, a wait for the
 * guest to power off, then force (see the driver). A suspended machine keeps its saved
 * memory unless forced; a broken one whose QEMU still runs is stopped all the same.
 */
import type { Instance } from '../instance/inspect.js';
import { withMachine } from '../instance/locked.js';
import { writeMachineState } from '../store/machine.js';
import type { Reporter } from '../ui/reporter.js';
import type { Project } from '../vmfile/config.js';

export interface HaltResult {
  machine: string;
  outcome: 'not created' | 'already halted' | 'clean' | 'forced';
  seconds: number;
}

export async function haltMachine(project: Project, name: string, options: { force: boolean; timeout: number }, reporter: Reporter): Promise<HaltResult> {
  return withMachine(project, name, 'halt', async (machine) => {
    if (machine.status !== 'not created') return halt(machine, options, reporter);
    reporter.info(name, 'not created; nothing to halt');
    return { machine: name, outcome: 'not created', seconds: 0 };
  });
}

async function halt(machine: Instance, options: { force: boolean; timeout: number }, reporter: Reporter): Promise<HaltResult> {
  const { name } = machine;
  if (machine.status === 'suspended' && machine.state !== undefined) {
    if (!options.force) {
      reporter.info(name, 'is suspended (its memory is saved, QEMU is stopped): vmfile resume continues it; vmfile halt --force discards the saved memory');
      return { machine: name, outcome: 'already halted', seconds: 0 };
    }
    await machine.driver.discardSavedState();
    const { suspendedAt: _at, ...halted } = machine.state;
    await writeMachineState(machine.paths.state, halted);
    reporter.info(name, 'saved memory discarded; the machine is halted');
    return { machine: name, outcome: 'forced', seconds: 0 };
  }
  if (machine.pid === undefined) {
    reporter.info(name, 'is not running (already halted)');
    await machine.driver.stop({ graceful: false, timeoutMs: 0 });
    return { machine: name, outcome: 'already halted', seconds: 0 };
  }
  const started = performance.now();
  const phase = reporter.phase(name, options.force ? 'Forcing power off' : 'Shutting down (ACPI power button)');
  const outcome = await machine.driver.stop({ graceful: !options.force, timeoutMs: options.timeout * 1000, progress: (text) => phase.progress(text) });
  phase.done(outcome === 'clean' ? 'guest powered off' : 'forced');
  return { machine: name, outcome: outcome === 'clean' ? 'clean' : 'forced', seconds: (performance.now() - started) / 1000 };
}

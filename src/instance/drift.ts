/**
 * Config drift: what a running machine was started with (its record) against what the
 * Vmfile says now. CPUs, memory, forwarded ports and folders take effect only when QEMU
 * starts, so a changed value is reported with `vmfile reload` as the way to apply it;
 * a changed box needs the machine made again. Pure.
 */
import type { MachineState } from '../store/machine.js';
import { providerLabel, type MachineConfig } from '../vmfile/config.js';
import { formatSize } from '../vmfile/size.js';

/** One line per difference, e.g. "memory 1GiB -> 2GiB"; empty when the machine is as the Vmfile says. */
export function driftOf(machine: MachineConfig, state: MachineState): string[] {
  const lines: string[] = [];
  if (state.launch !== undefined && state.suspendedAt === undefined) {
    if (state.launch.cpus !== machine.cpus) lines.push(`cpus ${state.launch.cpus} -> ${machine.cpus}`);
    if (state.launch.memory !== machine.memory) lines.push(`memory ${formatSize(state.launch.memory)} -> ${formatSize(machine.memory)}`);
    const booted = state.launch.boot;
    if (machine.firmware !== undefined && booted !== undefined && booted !== 'kernel' && booted !== machine.firmware) lines.push(`firmware ${booted} -> ${machine.firmware}`);
  }
  if (state.forwards !== undefined) {
    const running = state.forwards.map((f) => ({ key: `${f.guestPort}/${f.protocol}`, text: `${f.hostIp}:${f.hostPort}->${f.guestPort}/${f.protocol}`, host: `${f.hostIp}:${f.hostPort}` }));
    const wanted = machine.ports.map((p) => ({ key: `${p.guest}/${p.protocol}`, text: `${p.hostIp}:${p.host}->${p.guest}/${p.protocol}`, host: `${p.hostIp}:${p.host}`, moves: p.autoCorrect }));
    for (const port of wanted) {
      const now = running.find((forward) => forward.key === port.key);
      // autoCorrect may have moved the host port: that is the Vmfile's own wish, not drift.
      if (now === undefined) lines.push(`port ${port.text} added`);
      else if (now.host !== port.host && !port.moves) lines.push(`port ${now.text} -> ${port.text}`);
    }
    for (const forward of running) if (!wanted.some((port) => port.key === forward.key)) lines.push(`port ${forward.text} removed`);
  }
  if (state.folders !== undefined) {
    const describe = (folder: { host: string; readonly: boolean; type?: string | undefined }) => `${folder.type ?? 'folder'} of ${folder.host}${folder.readonly ? ', read-only' : ''}`;
    for (const folder of machine.folders) {
      const now = state.folders.find((f) => f.guest === folder.guest);
      if (now === undefined) lines.push(`folder ${folder.guest} (${describe(folder)}) added`);
      else if (now.host !== folder.host || now.readonly !== folder.readonly || (folder.type !== undefined && folder.type !== now.type)) {
        lines.push(`folder ${folder.guest}: ${describe(now)} -> ${describe({ ...folder, type: folder.type ?? now.type })}`);
      }
    }
    for (const folder of state.folders) if (!machine.folders.some((f) => f.guest === folder.guest)) lines.push(`folder ${folder.guest} (${describe(folder)}) removed`);
  }
  if (state.box.name !== machine.box.name || (machine.box.version !== undefined && machine.box.version !== state.box.version)) {
    lines.push(`box ${state.box.name} ${state.box.version} -> ${machine.box.name}${machine.box.version === undefined ? '' : ` ${machine.box.version}`} (only a new machine takes it: vmfile destroy, then vmup)`);
  }
  const recorded = providerLabel(state.provider);
  const wanted = providerLabel(machine.provider);
  if (recorded !== wanted) lines.push(`provider ${recorded} -> ${wanted} (a machine stays where it was created: vmfile destroy, then vmup, makes it there)`);
  return lines;
}

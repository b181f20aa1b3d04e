/**
 * Starting a machine's QEMU: the devices it needs first (virtiofsd, the project's
 * switch, the sockets' directory), then QEMU itself, detached, and for a warm start the
 * saved memory fed in over QMP while the guest waits paused.
 *
 * The free SSH port is found by binding and releasing it; another program can take it
 * in between, so a failed forward is retried on a new port.
 */
import { rm, writeFile } from 'node:fs/promises';
import { UserError } from '../../errors.js';
import { startVirtiofsd } from '../../folders/sync.js';
import { freePort, resolveForwards } from '../../network/ports.js';
import { startNetwork } from '../../network/project-hub.js';
import { qemuArgs } from '../../qemu/argv.js';
import { killProcess, launchQemu, waitForExit } from '../../qemu/process.js';
import { QmpClient } from '../../qmp/client.js';
import type { MachinePaths } from '../../store/layout.js';
import type { BootIdLocation } from '../../store/machine.js';
import { SUSPEND_SNAPSHOT } from '../../store/layout.js';
import { ensureSocketDir } from '../../store/socket.js';
import type { StartSpec, Started } from '../driver.js';
import { bootSpec } from './boot.js';
import { replaceBootId } from './boot-id.js';
import type { QemuFiles } from './files.js';
import { loadStateFromFile } from './migration.js';

export async function launch(name: string, paths: MachinePaths, files: QemuFiles, spec: StartSpec): Promise<Started> {
  await writeFile(files.serialLog, '', { mode: 0o600 });
  for (const socket of [files.qmpSocket, paths.sshControl, files.agentSocket]) await ensureSocketDir(socket);
  const forwards = await resolveForwards(spec.machine, spec.ports, spec.onPortMoved ?? (() => {}));
  const virtiofs = await startVirtiofsd(files.virtiofsSocket, spec.folders);
  const ninep = spec.folders.filter((folder) => folder.type === '9p').map((folder) => ({ tag: folder.tag, path: folder.host, readonly: folder.readonly }));
  const privateNetwork =
    spec.privateNetwork === undefined
      ? undefined
      : { socket: spec.privateNetwork.project === undefined ? files.noNetworkSocket : await startNetwork(spec.privateNetwork.project), mac: spec.privateNetwork.mac };
  const bootId = spec.fromWarmState === undefined ? undefined : spec.bootId;
  if (bootId !== undefined) {
    await ensureSocketDir(files.gdbSocket);
    await rm(files.gdbSocket, { force: true });
  }
  const boot = await bootSpec(name, files, spec.box, spec.boot);
  for (let attempt = 1; ; attempt++) {
    const sshPort = await freePort();
    const args = qemuArgs({
      name: spec.machine,
      accel: spec.accel,
      cpus: spec.cpus,
      memory: spec.memory,
      boot,
      overlay: files.overlay,
      seedDir: paths.seedDir,
      // A held SSH port is forwarded later (ssh-forward.ts); chosen now, so the record knows it.
      forwards: [...(spec.holdSsh === true ? [] : [{ protocol: 'tcp' as const, hostIp: '127.0.0.1', hostPort: sshPort, guestPort: 22 }]), ...forwards],
      qmpSocket: files.qmpSocket,
      agentSocket: files.agentSocket,
      serialLog: files.serialLog,
      pidFile: files.pidFile,
      ...(spec.fromSavedState ? { loadvm: SUSPEND_SNAPSHOT } : {}),
      ...(spec.fromWarmState === undefined ? {} : { incoming: true }),
      ...(spec.generation === undefined ? {} : { generation: spec.generation }),
      ...(bootId === undefined ? {} : { gdbSocket: files.gdbSocket }),
      virtiofs,
      ninep,
      ...(privateNetwork === undefined ? {} : { privateNetwork }),
    });
    let pid: number;
    try {
      pid = await launchQemu(args, files.pidFile);
    } catch (error) {
      const text = error instanceof Error ? `${error.message} ${'stderr' in error ? String(error.stderr) : ''}` : '';
      if (attempt < 3 && /host forwarding rule|Address already in use/i.test(text)) continue;
      throw error;
    }
    const started = { pid, sshPort, forwards };
    await spec.onLaunched?.(started);
    if (spec.fromWarmState !== undefined) await loadWarmState(name, files, pid, spec.fromWarmState, bootId, spec.beforeContinue);
    return started;
  }
}

/** A QEMU that cannot load the state is stopped: it would wait for a stream forever. */
async function loadWarmState(name: string, files: QemuFiles, pid: number, file: string, bootId: BootIdLocation | undefined, beforeContinue: (() => Promise<void>) | undefined): Promise<void> {
  let qmp: QmpClient | undefined;
  try {
    qmp = await QmpClient.connect(files.qmpSocket);
    const monitor = qmp;
    await loadStateFromFile(monitor, file, {
      timeoutMs: 120_000,
      beforeContinue: async () => {
        if (bootId !== undefined) await replaceBootId(monitor, files.gdbSocket, bootId);
        await beforeContinue?.();
      },
    });
  } catch (error) {
    killProcess(pid, 'SIGKILL');
    await waitForExit(pid, files.overlay, 5000);
    throw new UserError(`machine "${name}": its warm state ${file} could not be loaded: ${error instanceof Error ? error.message : String(error)}`, {
      hint: 'run vmup again: this machine then boots from its disk instead. If new machines keep failing to load the state, set warmStart: false in the Vmfile',
      cause: error,
    });
  } finally {
    qmp?.close();
  }
}

/**
 * The QEMU driver's own files in a machine's directory (the names every driver shares
 * are in store/layout.ts). Sockets go through store/socket.ts, which moves one whose
 * path would be too long to bind.
 */
import { join } from 'node:path';
import { socketPath } from '../../store/socket.js';

export interface QemuFiles {
  /** The machine's disk: a qcow2 overlay over its box's disk or a warm state's. */
  overlay: string;
  /** UEFI machines: the machine's own copy of OVMF's variable store (qcow2, so savevm snapshots it too). */
  firmwareVars: string;
  /** The guest's serial console. */
  serialLog: string;
  pidFile: string;
  qmpSocket: string;
  /** The QEMU guest agent's channel (agent.ts). */
  agentSocket: string;
  /** QEMU's gdbstub, open only while a warm start writes the guest's new boot ID (boot-id.ts). */
  gdbSocket: string;
  /** Where a generic machine's private NIC points: a socket no switch ever answers on. */
  noNetworkSocket: string;
  /** The socket a virtiofsd serves folder `tag` on. */
  virtiofsSocket: (tag: string) => string;
}

export function qemuFiles(dir: string): QemuFiles {
  return {
    overlay: join(dir, 'overlay.qcow2'),
    firmwareVars: join(dir, 'efivars.qcow2'),
    serialLog: join(dir, 'serial.log'),
    pidFile: join(dir, 'qemu.pid'),
    qmpSocket: socketPath(dir, 'qmp.sock'),
    agentSocket: socketPath(dir, 'qga.sock'),
    gdbSocket: socketPath(dir, 'gdb.sock'),
    noNetworkSocket: socketPath(dir, 'no-network.sock'),
    virtiofsSocket: (tag) => socketPath(dir, `${tag}.sock`),
  };
}

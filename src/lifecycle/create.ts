/**
 * Creating a machine: its own login key and SSH host key, the disk over the box (or
 * over a warm state's disk), then the record. Ordered so that a fault at any point loses
 * nothing: the record is written last, so a half-created machine is simply created again.
 */
import { randomUUID } from 'node:crypto';
import { chmod, copyFile, mkdir } from 'node:fs/promises';
import type { InstalledBox } from '../box/store.js';
import type { Driver } from '../driver/driver.js';
import { ConfigError } from '../errors.js';
import { generateKeyPair, hostKeyAlias, knownHostsLine, readPublicKey } from '../ssh/keys.js';
import { writeFileAtomic, writeJsonAtomic } from '../store/json.js';
import type { MachinePaths } from '../store/layout.js';
import { MachineRecord } from '../store/machine.js';
import type { ProvisionRecord } from '../store/provision-record.js';
import type { Phase } from '../ui/reporter.js';
import type { MachineConfig } from '../vmfile/config.js';
import { formatSize } from '../vmfile/size.js';
import type { WarmState } from './warm-state.js';

/** What a new machine starts from: a warm state (or a layer over one), and the steps it already holds. */
export interface StartingState {
  state: WarmState;
  /** Steps done in the state's layers, in order, as the provisioning record keeps them. */
  cached: ProvisionRecord['steps'];
}

/**
 * With `from`, the disk is made over a warm state's (or a provisioning layer's), its first
 * start loads the state's memory, and the steps the layers hold are recorded as done.
 */
export async function createMachine(machine: MachineConfig, box: InstalledBox, paths: MachinePaths, driver: Driver, from?: StartingState, phase?: Phase): Promise<MachineRecord> {
  const warm = from?.state;
  if (machine.disk < box.metadata.disk.virtualSize) {
    throw new ConfigError(`machine "${machine.name}": disk ${formatSize(machine.disk)} is smaller than box ${box.metadata.name}'s disk (${formatSize(box.metadata.disk.virtualSize)})`, {
      hint: `set disk to at least "${formatSize(box.metadata.disk.virtualSize)}"`,
    });
  }
  await mkdir(paths.dir, { recursive: true, mode: 0o700 });
  await generateKeyPair(paths.privateKey, `vmfile machine ${machine.name}`);
  await generateKeyPair(paths.hostPrivateKey, `vmfile host key ${machine.name}`);
  await writeFileAtomic(paths.knownHosts, knownHostsLine(hostKeyAlias(machine.name), await readPublicKey(paths.hostPublicKey)));
  if (warm !== undefined) {
    // The state's own login and host key reach the guest until it has become this machine.
    await copyFile(warm.login.privateKey, paths.warmLoginKey);
    await chmod(paths.warmLoginKey, 0o600);
    await copyFile(warm.login.hostPublicKey, paths.warmHostKey);
  }
  await driver.create(box, machine.disk, warm?.disk, phase);
  // Written every time: a create retried without layers must not keep a former try's record.
  await writeJsonAtomic(paths.provisioned, { steps: from?.cached ?? {} });
  const placement = driver.placement();
  return MachineRecord.create(paths.state, {
    name: machine.name,
    instanceId: newInstanceId(),
    createdAt: new Date().toISOString(),
    box: { name: box.metadata.name, version: box.metadata.version, sha256: box.metadata.disk.sha256 },
    user: box.metadata.user,
    ...(placement === undefined ? {} : { provider: placement }),
    ...(box.metadata.firstLogin === 'vagrant-insecure-key' ? { login: 'vagrant-insecure-key' as const } : {}),
    ...(warm === undefined ? { checkRoot: true as const } : { login: 'warm-state' as const, warmMemory: warm.memory, ...(warm.record.bootId === undefined ? {} : { warmBootId: warm.record.bootId }) }),
  });
}

/** cloud-init does its first-boot work once per instance id. */
export function newInstanceId(): string {
  return `vmfile-${randomUUID()}`;
}

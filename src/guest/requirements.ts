/**
 * What a machine needs once its process runs, as a list of named requirements (in the
 * spirit of Lima's hostagent/requirements.go). Every start goes through it: a boot, a
 * resume, a first start from a warm state, a start finished by a later vmup, and the
 * generic machines that warm states and provisioning layers are made from. They differ
 * only in which entries apply. A new capability adds an entry here instead of another
 * copy of the sequence.
 *
 * The record (machine.json) changes only through the start's MachineRecord, at the
 * moments a killed vmfile must be able to pick up from.
 */
import { configurePrivateNetwork } from '../network/guest.js';
import { macFor } from '../network/address.js';
import type { PlannedFolder } from '../folders/plan.js';
import { mountLiveFolders, rsyncFolders } from '../folders/sync.js';
import { CLOUD_INIT_WAIT, type ProvisionMode } from '../provision/runner.js';
import { inPhase } from '../ui/reporter.js';
import { syncGuestClock } from './communicator.js';
import { BOOT_ID_PROBE, parseBootIdLocation } from './boot-id.js';
import { openSshOptions } from './openssh.js';
import { session, type GuestStart } from './guest-start.js';
import { becomeItself, sshAnswers, takeFirstLogin } from './login.js';
import { growRootFileSystem } from './grow-root.js';
import { provisionMachine } from './provisioner.js';
import { whenQemuGone } from './running.js';

export type { GuestStart };

export interface Requirement {
  name: string;
  applies: (c: GuestStart) => boolean;
  run: (c: GuestStart) => Promise<void>;
}

export const requirements: readonly Requirement[] = [
  {
    // A Vagrant box's published login must reach nobody but vmfile: its SSH port stays
    // unforwarded until the machine is its own (guest/first-login.ts).
    name: 'first login taken before SSH is open',
    applies: (c) => c.record.state.sshHeld === true,
    run: takeFirstLogin,
  },
  { name: 'SSH answers', applies: () => true, run: sshAnswers },
  {
    // The box's or the warm state's login is replaced before anything else runs in the guest.
    name: 'became this machine',
    applies: (c) => c.record.state.login !== undefined,
    run: becomeItself,
  },
  {
    // Before the first flush: its wait ends only when nothing of cloud-init is still writing.
    name: 'cloud-init finished',
    applies: (c) => c.generic !== undefined && !c.warm,
    run: async (c) => void (await session(c).exec(`(${CLOUD_INIT_WAIT}); true`)),
  },
  {
    // Where the box's own tools (cloud-init's growpart) left the disk's new space unused.
    // Once per machine: a warm state's clone has the disk its generic machine grew.
    name: 'root file system fills the disk',
    applies: (c) => c.record.state.checkRoot === true,
    run: async (c) => {
      await growRootFileSystem(c);
      await c.record.update(({ checkRoot: _check, ...checked }) => checked);
    },
  },
  {
    // Flush what cloud-init wrote on first boot, so a hard power-off cannot lose it (ext4
    // lost the new SSH host key that way once, and sshd never started again).
    name: 'first boot flushed to disk',
    applies: (c) => c.record.state.initialized !== true,
    run: async (c) => {
      await session(c).exec('sync');
      await c.record.update((state) => ({ ...state, initialized: true }));
    },
  },
  {
    name: 'boot ID located',
    applies: (c) => c.generic !== undefined && !c.warm,
    run: async (c) => {
      let probed = '';
      const found = (await session(c).exec(BOOT_ID_PROBE, { onStdout: (chunk) => void (probed += chunk) })) === 0 ? parseBootIdLocation(probed) : undefined;
      if (c.generic !== undefined && found !== undefined) c.generic.bootId = found;
    },
  },
  {
    // A guest from saved memory keeps the time it was saved at; a take-over sets it itself.
    name: 'guest clock set from the host',
    applies: (c) => c.start === 'resume' || (c.warm && c.generic !== undefined),
    run: (c) => syncGuestClock(session(c)),
  },
  {
    name: 'private network joined',
    applies: (c) => c.machine.privateIp !== undefined,
    run: async (c) => {
      const ip = c.machine.privateIp ?? '';
      const peers = c.project.machines.flatMap((peer) => (peer.privateIp === undefined ? [] : [{ name: peer.name, hostname: peer.hostname, ip: peer.privateIp }]));
      await inPhase(c.reporter, c.machine.name, `Joining the private network as ${ip}`, () =>
        configurePrivateNetwork(session(c), c.machine.name, macFor(c.project.dir, c.machine.name, 1), ip, peers),
      );
    },
  },
  {
    // Live folders stay mounted across a suspend; rsync folders are copied again.
    name: 'folders synced',
    applies: (c) => foldersToEnable(c).length > 0,
    run: async (c) => {
      const folders = foldersToEnable(c);
      await inPhase(c.reporter, c.machine.name, `Syncing folders (${folders.map((f) => `${f.guest} ${f.type}`).join(', ')})`, async (phase) => {
        await mountLiveFolders(session(c), c.machine.name, folders);
        await rsyncFolders(session(c), c.paths, openSshOptions(c.paths, c.record.state, c.sshPort, c.driver.sshHop()), c.machine.name, c.record.state.user, folders, {
          notice: (text) => c.reporter.notice(text),
          progress: (text) => phase.progress(text),
        });
      });
    },
  },
  {
    // Only once the guest answers: until then the saved memory is the machine's state.
    name: 'saved memory dropped',
    applies: (c) => c.start === 'resume',
    run: async (c) => {
      await c.driver.discardSavedState();
      await c.record.update(({ suspendedAt: _at, ...running }) => running);
    },
  },
  {
    name: 'provisioned',
    applies: (c) => c.provision === 'all' || (c.provision === 'boot' && c.start === 'boot') || typeof c.provision === 'object',
    run: async (c) => {
      const mode: ProvisionMode = typeof c.provision === 'object' ? c.provision : c.provision === 'all' ? { kind: 'all' } : { kind: 'boot' };
      c.stepsRun = await provisionMachine({ project: c.project, machine: c.machine, state: c.record.state, paths: c.paths, session: session(c) }, mode, c);
    },
  },
];

function foldersToEnable(c: GuestStart): readonly PlannedFolder[] {
  return c.start === 'resume' ? c.folders.filter((folder) => folder.type === 'rsync') : c.folders;
}

/** Meets every requirement that applies, in order; the session is closed at the end whatever happens. */
export async function meetRequirements(c: GuestStart): Promise<void> {
  try {
    for (const requirement of requirements) {
      if (!requirement.applies(c)) continue;
      await requirement.run(c).catch((error: unknown) => whenQemuGone(error, c.machine.name, c.driver, c.pid, `before the machine was ready (at: ${requirement.name})`));
    }
  } finally {
    c.session?.close();
  }
}

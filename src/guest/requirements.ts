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
import { readFile, rm } from 'node:fs/promises';
import { configurePrivateNetwork } from '../network/guest.js';
import { macFor } from '../network/address.js';
import type { Driver } from '../driver/driver.js';
import { GuestError, lastLines } from '../errors.js';
import type { PlannedFolder } from '../folders/plan.js';
import { mountLiveFolders, rsyncFolders } from '../folders/sync.js';
import { CLOUD_INIT_WAIT, type ProvisionMode } from '../provision/runner.js';
import { SshTimeout, waitForSsh, type SshSession, type SshTarget } from '../ssh/client.js';
import type { MachinePaths } from '../store/layout.js';
import type { BootIdLocation, MachineRecord } from '../store/machine.js';
import { inPhase, type Reporter } from '../ui/reporter.js';
import type { MachineConfig, Project } from '../vmfile/config.js';
import { BOOT_ID_PROBE, parseBootIdLocation } from './boot-id.js';
import { sshTargetFor, syncGuestClock } from './communicator.js';
import { openSshOptions } from './openssh.js';
import { firstLogin, takeOver, type FirstLogin } from './first-login.js';
import { provisionMachine } from './provisioner.js';
import { whenQemuGone } from './running.js';

/** A start whose machine runs: what every requirement sees. */
export interface GuestStart {
  project: Project;
  machine: MachineConfig;
  paths: MachinePaths;
  driver: Driver;
  reporter: Reporter;
  record: MachineRecord;
  /** A fresh boot (from disk or from a warm state), or a continuation of a suspended machine. */
  start: 'boot' | 'resume';
  /** Its memory came from a warm state: a machine's first start, or a layer's generic machine. */
  warm: boolean;
  /**
   * A warm state's or provisioning layer's generic machine: no identity to take, no
   * folders or network; what it finds out for the state (the boot ID) is kept here.
   */
  generic?: { bootId?: BootIdLocation };
  /** Which steps run: 'boot' = Vagrant's default; 'all' = --provision; 'none' = --no-provision; or exactly some. */
  provision: 'boot' | 'all' | 'none' | ProvisionMode;
  folders: readonly PlannedFolder[];
  pid: number;
  sshPort: number;
  /** Open once "SSH answers" is met; closed when the start ends. */
  session?: SshSession;
  /** While the machine still has its box's or warm state's login: how it is reached, and whether the session is that login. */
  firstLogin?: FirstLogin & { session: boolean };
  stepsRun: number;
}

export interface Requirement {
  name: string;
  applies: (c: GuestStart) => boolean;
  run: (c: GuestStart) => Promise<void>;
}

export const requirements: readonly Requirement[] = [
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
      c.stepsRun = await provisionMachine({ project: c.project, machine: c.machine, state: c.record.state, paths: c.paths, session: session(c) }, mode, c.reporter);
    },
  },
];

function session(c: GuestStart): SshSession {
  if (c.session === undefined) throw new Error('a requirement ran before SSH answered');
  return c.session;
}

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

/**
 * Waits for an SSH login: with the machine's own key and its host key pinned, and first
 * with the box's or the warm state's own login while the machine still has it.
 */
async function sshAnswers(c: GuestStart): Promise<void> {
  const { paths, machine } = c;
  const state = c.record.state;
  await inPhase(c.reporter, machine.name, `Waiting for SSH on 127.0.0.1:${c.sshPort}`, async (phase) => {
    const deadline = Date.now() + machine.bootTimeout * 1000;
    const pinned = await sshTargetFor(paths, state, c.sshPort, c.driver.sshHop());
    const first = state.login === undefined ? undefined : await firstLogin(state.login, pinned, paths, { name: machine.name, projectDir: c.project.dir, privateIp: machine.privateIp });
    const targets = first?.target === undefined ? [pinned] : [first.target, pinned];
    c.session = await waitFor(c, targets, deadline, (text) => phase.progress(text));
    if (first !== undefined) c.firstLogin = { ...first, session: first.target !== undefined && c.session.target === first.target };
  });
}

/**
 * Over the first login: the machine's own keys, machine-id and hostname in (guest/first-login.ts),
 * the box's or the warm state's out. The take-over ends with a sync, which flushed the
 * first boot's work too.
 */
async function becomeItself(c: GuestStart): Promise<void> {
  const { machine, paths } = c;
  const state = c.record.state;
  const first = c.firstLogin;
  if (first === undefined) throw new Error('the take-over ran before the first login was attempted');
  const tookOver = first.overOwnLoginToo || first.session;
  if (tookOver) {
    await inPhase(c.reporter, machine.name, first.progress, () => takeOver(session(c), machine.name, paths, state.user, machine.hostname, first.options));
  }
  await c.record.update(({ login: _login, ...own }) => ({ ...own, ...(tookOver ? { initialized: true } : {}) }));
  await Promise.all([rm(paths.warmLoginKey, { force: true }), rm(paths.warmHostKey, { force: true })]);
}

async function waitFor(c: GuestStart, targets: SshTarget[], deadline: number, progress: (text: string) => void): Promise<SshSession> {
  const { machine } = c;
  const console = c.driver.consoleLog();
  try {
    return await waitForSsh(targets, {
      deadline,
      onAttempt: (elapsed) => progress(`still waiting for SSH (${Math.round(elapsed / 1000)} s of ${machine.bootTimeout} s)`),
      giveUp: async () => ((await c.driver.pid()) === undefined ? `machine "${machine.name}": QEMU (pid ${c.pid}) exited while booting. Last console lines:\n${await consoleTail(console)}` : undefined),
    });
  } catch (error) {
    if (error instanceof SshTimeout) {
      throw new GuestError(`machine "${machine.name}": SSH not ready after ${machine.bootTimeout} s (${error.lastError}). Last console lines:\n${await consoleTail(console)}`, {
        hint: `the machine is left running for inspection${console === undefined ? '' : ` (console log: ${console})`}; vmfile halt --force stops it, or raise bootTimeout in the Vmfile`,
      });
    }
    throw error;
  }
}

async function consoleTail(log: string | undefined): Promise<string> {
  const text = log === undefined ? '' : await readFile(log, 'utf8').catch(() => '');
  // eslint-disable-next-line no-control-regex
  const clean = text.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '');
  const tail = lastLines(clean, 15);
  return tail === '' ? '  (the console printed nothing)' : tail.split('\n').map((line) => `  | ${line}`).join('\n');
}

/**
 * What a machine needs once its process runs, as a list of named requirements shared by
 * a fresh boot and a resume (in the spirit of Lima's hostagent/requirements.go): first
 * SSH must answer, then each requirement that applies runs in order. A new capability
 * adds an entry here (a warm start's "become yourself", a Vagrant box's first login)
 * instead of another copy of the sequence.
 */
import { readFile, rm } from 'node:fs/promises';
import { configurePrivateNetwork } from '../network/guest.js';
import { macFor } from '../network/address.js';
import type { Driver } from '../driver/driver.js';
import { GuestError, lastLines } from '../errors.js';
import type { PlannedFolder } from '../folders/plan.js';
import { mountLiveFolders, rsyncFolders } from '../folders/sync.js';
import { SshSession, SshTimeout, waitForSsh, type SshTarget } from '../ssh/client.js';
import type { MachinePaths } from '../store/layout.js';
import { writeMachineState, type MachineState } from '../store/machine.js';
import { inPhase, type Reporter } from '../ui/reporter.js';
import type { MachineConfig, Project } from '../vmfile/config.js';
import { sshTargetFor, syncGuestClock } from './communicator.js';
import { openSshOptions } from './openssh.js';
import { firstLogin, takeOver } from './first-login.js';
import { provisionMachine } from './provisioner.js';
import { whenQemuGone } from './running.js';

export interface GuestContext {
  project: Project;
  machine: MachineConfig;
  paths: MachinePaths;
  driver: Driver;
  reporter: Reporter;
  /** A fresh boot, or a continuation from saved memory. */
  start: 'boot' | 'resume';
  /** 'boot' = Vagrant's default; 'all' = --provision; 'none' = --no-provision. */
  provision: 'boot' | 'all' | 'none';
  folders: readonly PlannedFolder[];
  /** The record as it stands; requirements that change it save it. */
  state: MachineState & { sshPort: number };
  session: SshSession;
  stepsRun: number;
}

export interface Requirement {
  name: string;
  applies: (context: GuestContext) => boolean;
  run: (context: GuestContext) => Promise<void>;
}

export const requirements: readonly Requirement[] = [
  {
    // Flush what cloud-init wrote on first boot, so a hard power-off cannot lose it (ext4
    // lost the new SSH host key that way once, and sshd never started again).
    name: 'first boot flushed to disk',
    applies: (c) => c.state.initialized !== true,
    run: async (c) => {
      await c.session.exec('sync');
      await save(c, { ...c.state, initialized: true });
    },
  },
  {
    name: 'guest clock set from the host',
    applies: (c) => c.start === 'resume',
    run: (c) => syncGuestClock(c.session),
  },
  {
    name: 'private network joined',
    applies: (c) => c.machine.privateIp !== undefined,
    run: async (c) => {
      const ip = c.machine.privateIp ?? '';
      const peers = c.project.machines.flatMap((peer) => (peer.privateIp === undefined ? [] : [{ name: peer.name, hostname: peer.hostname, ip: peer.privateIp }]));
      await inPhase(c.reporter, c.machine.name, `Joining the private network as ${ip}`, () =>
        configurePrivateNetwork(c.session, c.machine.name, macFor(c.project.dir, c.machine.name, 1), ip, peers),
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
        await mountLiveFolders(c.session, c.machine.name, folders);
        await rsyncFolders(c.session, c.paths, openSshOptions(c.paths, c.state, c.state.sshPort), c.machine.name, c.state.user, folders, {
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
      const { suspendedAt: _at, ...running } = c.state;
      await save(c, running);
    },
  },
  {
    name: 'provisioned',
    applies: (c) => c.provision === 'all' || (c.provision === 'boot' && c.start === 'boot'),
    run: async (c) => {
      c.stepsRun = await provisionMachine(c, c.provision === 'all' ? { kind: 'all' } : { kind: 'boot' }, c.reporter);
    },
  },
];

function foldersToEnable(c: GuestContext): readonly PlannedFolder[] {
  return c.start === 'resume' ? c.folders.filter((folder) => folder.type === 'rsync') : c.folders;
}

async function save(c: GuestContext, state: MachineState & { sshPort: number }): Promise<void> {
  await writeMachineState(c.paths.state, state);
  c.state = state;
}

/** Waits for SSH, then meets every requirement that applies; the session is closed at the end. */
export async function meetRequirements(context: Omit<GuestContext, 'session' | 'stepsRun'>, pid: number): Promise<{ state: MachineState; stepsRun: number }> {
  const session = await inPhase(context.reporter, context.machine.name, `Waiting for SSH on 127.0.0.1:${context.state.sshPort}`, (phase) =>
    waitReady(context, pid, (text) => phase.progress(text)),
  );
  const guest: GuestContext = { ...context, session, stepsRun: 0 };
  try {
    for (const requirement of requirements) {
      if (requirement.applies(guest)) await requirement.run(guest).catch((error: unknown) => whenQemuGone(error, context.machine.name, context.driver, pid, `before the machine was ready (at: ${requirement.name})`));
    }
    const { starting: _starting, ...ready } = guest.state;
    await save(guest, ready);
  } finally {
    session.close();
  }
  return { state: guest.state, stepsRun: guest.stepsRun };
}

async function waitReady(context: Omit<GuestContext, 'session' | 'stepsRun'>, pid: number, progress: (text: string) => void): Promise<SshSession> {
  const { machine, paths, state } = context;
  const deadline = Date.now() + machine.bootTimeout * 1000;
  const pinned = await sshTargetFor(paths, state, state.sshPort);
  if (state.login !== undefined) {
    // The box's or the warm state's own login first; the machine's own once a take-over
    // (or, after a failed first start, cloud-init) installed it.
    const first = await firstLogin(state.login, pinned, paths, { name: machine.name, projectDir: context.project.dir, privateIp: machine.privateIp });
    const session = await waitFor(context, pid, first.target === undefined ? [pinned] : [first.target, pinned], deadline, progress);
    try {
      const tookOver = first.overOwnLoginToo || session.target === first.target;
      if (tookOver) {
        progress(first.progress);
        await takeOver(session, machine.name, paths, state.user, machine.hostname, first.options);
      }
      // The take-over ends with a sync, which flushed the first boot's work too.
      const { login: _login, ...own } = { ...state, ...(tookOver ? { initialized: true } : {}) };
      await writeMachineState(paths.state, own);
      context.state = own;
      await Promise.all([rm(paths.warmLoginKey, { force: true }), rm(paths.warmHostKey, { force: true })]);
    } catch (error) {
      session.close();
      throw error;
    }
    // The rest of the start goes on over this session: it was opened against a pinned host
    // key, and the take-over it carried succeeded. A second login would cost a key exchange
    // (about 2 s under TCG); every later connection (vmssh, rsync) uses the machine's own
    // login and pins the host key the take-over installed.
    return session;
  }
  return waitFor(context, pid, [pinned], deadline, progress);
}

async function waitFor(context: Omit<GuestContext, 'session' | 'stepsRun'>, pid: number, targets: SshTarget[], deadline: number, progress: (text: string) => void): Promise<SshSession> {
  const { machine, paths } = context;
  try {
    return await waitForSsh(targets, {
      deadline,
      onAttempt: (elapsed) => progress(`still waiting for SSH (${Math.round(elapsed / 1000)} s of ${machine.bootTimeout} s)`),
      giveUp: async () =>
        (await context.driver.pid()) === undefined ? `machine "${machine.name}": QEMU (pid ${pid}) exited while booting. Last console lines:\n${await serialTail(paths)}` : undefined,
    });
  } catch (error) {
    if (error instanceof SshTimeout) {
      throw new GuestError(`machine "${machine.name}": SSH not ready after ${machine.bootTimeout} s (${error.lastError}). Last console lines:\n${await serialTail(paths)}`, {
        hint: `the machine is left running for inspection (console log: ${paths.serialLog}); vmfile halt --force stops it, or raise bootTimeout in the Vmfile`,
      });
    }
    throw error;
  }
}

async function serialTail(paths: MachinePaths): Promise<string> {
  const text = await readFile(paths.serialLog, 'utf8').catch(() => '');
  // eslint-disable-next-line no-control-regex
  const clean = text.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '');
  const tail = lastLines(clean, 15);
  return tail === '' ? '  (the console printed nothing)' : tail.split('\n').map((line) => `  | ${line}`).join('\n');
}

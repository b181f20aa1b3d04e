/**
 * The start procedure at its seams: a driver that records what it is asked (no QEMU),
 * and a guest that is a real SSH server (fake-guest.ts) with the keys the machine was
 * given. What is checked is what the user and the next command see: which steps ran,
 * what the driver was told, what ran in the guest, and what the record says after.
 */
import { copyFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import type { InstalledBox } from '../../../src/box/store.js';
import type { Driver, StartSpec, Started } from '../../../src/driver/driver.js';
import type { Instance } from '../../../src/instance/inspect.js';
import { startMachine } from '../../../src/lifecycle/start.js';
import type { MachinePlan } from '../../../src/lifecycle/plan.js';
import { generateKeyPair } from '../../../src/ssh/keys.js';
import { machinePaths, type MachinePaths } from '../../../src/store/layout.js';
import { readMachineState, writeMachineState, type MachineState } from '../../../src/store/machine.js';
import { writeJsonAtomic } from '../../../src/store/json.js';
import { listProjects } from '../../../src/store/projects.js';
import type { Reporter } from '../../../src/ui/reporter.js';
import { parseVmfile } from '../../../src/vmfile/config.js';
import { FakeGuest, type GuestHandler } from '../guest/fake-guest.js';
import { tempDir } from '../temp-dir.js';

const guests: FakeGuest[] = [];
afterEach(async () => {
  for (const guest of guests.splice(0)) await guest.close();
});

/** What the user saw: phases (with how they ended) and lines. */
function recorder(): Reporter & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    phase: (_machine, title) => {
      lines.push(`phase: ${title}`);
      return { progress: () => {}, measure: () => {}, done: () => lines.push(`done: ${title}`), fail: () => lines.push(`failed: ${title}`) };
    },
    info: (_machine, text) => lines.push(`info: ${text}`),
    notice: (text) => lines.push(`note: ${text}`),
    output: () => {},
  };
}

/** A driver that runs no QEMU: its "guest" is a FakeGuest started with the machine's host key. */
class RecordingDriver {
  readonly calls: string[] = [];
  readonly specs: StartSpec[] = [];
  running = false;
  paused = false;
  sshOpen = false;
  /** The guest agent: undefined when the box has none. */
  agent: ((argv: readonly string[], stdin: string) => { code: number; output: string } | undefined) | undefined;
  /** Whether the guest has opened the agent's channel (undefined: the driver cannot tell). */
  agentChannel: (() => boolean | undefined) | undefined;
  guest: FakeGuest | undefined;
  constructor(
    private readonly paths: MachinePaths,
    private readonly handler: GuestHandler = () => undefined,
  ) {}

  driver(features: Partial<Driver['features']> = {}): Driver {
    const self = this;
    const unexpected = (name: string) => async (): Promise<never> => {
      throw new Error(`unexpected driver call: ${name}`);
    };
    return {
      features: { warmStart: false, liveFolders: [], firmware: [], guestAgent: false, heldSsh: false, memorySnapshots: true, migration: false, localProcess: true, ...features },
      location: () => ({ driver: 'fake', host: 'this host', pidLabel: 'pid' }),
      placement: () => undefined,
      host: async () => ({ name: 'this host', cpus: 2, memory: 4 * 1024 ** 3, accels: ['tcg'], kvmReason: 'none', arches: ['x86_64'], liveFolders: [] }),
      check: unexpected('check'),
      hypervisor: async () => 'fake 1.0',
      sshHop: () => undefined,
      consoleLog: () => undefined,
      diskFile: () => undefined,
      hasDisk: async () => true,
      base: async () => undefined,
      pid: async () => (self.running ? 4242 : undefined),
      paused: async () => self.running && self.paused,
      continue: async () => {
        self.calls.push('continue');
        const was = self.paused;
        self.paused = false;
        return was;
      },
      continueAfterIoError: async () => false,
      create: async () => void self.calls.push('create'),
      checkDisk: async () => {},
      start: async (spec: StartSpec): Promise<Started> => {
        self.calls.push('start');
        self.specs.push(spec);
        const guest = self.guest ?? (await self.bootGuest());
        const started = { pid: 4242, sshPort: guest.port, forwards: [] };
        self.running = true;
        await spec.onLaunched?.(started);
        if (spec.fromWarmState !== undefined) await spec.beforeContinue?.();
        return started;
      },
      stop: async () => {
        self.calls.push('stop');
        self.running = false;
        return 'forced';
      },
      suspend: unexpected('suspend'),
      saveState: unexpected('saveState'),
      discardSavedState: async () => void self.calls.push('discardSavedState'),
      listSnapshots: async () => [],
      saveSnapshot: unexpected('saveSnapshot'),
      applySnapshot: unexpected('applySnapshot'),
      setGuestClock: async () => false,
      execInGuest: async (argv, options) => {
        self.calls.push(`agent: ${argv[0] ?? ''}`);
        return self.agent?.(argv, options.stdin ?? '');
      },
      guestAgentChannelOpen: async () => self.agentChannel?.(),
      openSsh: async (port) => {
        self.calls.push('openSsh');
        self.sshOpen = true;
        return port;
      },
      closeSsh: async () => {
        self.calls.push('closeSsh');
        self.sshOpen = false;
      },
      deleteSnapshot: unexpected('deleteSnapshot'),
      exportDisk: unexpected('exportDisk'),
      destroy: unexpected('destroy'),
    };
  }

  /** The guest as cloud-init (or the warm state) leaves it: the machine's host key, its login and the warm state's. */
  async bootGuest(): Promise<FakeGuest> {
    const guest = await FakeGuest.start(this.paths.hostPrivateKey, this.handler);
    guests.push(guest);
    await guest.allow('own', this.paths.publicKey);
    await guest.allow('warm', `${this.paths.warmLoginKey}.pub`).catch(() => undefined);
    if (process.env['VMFILE_VAGRANT_KEY'] !== undefined) await guest.allow('insecure', `${process.env['VMFILE_VAGRANT_KEY']}.pub`);
    this.guest = guest;
    return guest;
  }
}

const box = {
  metadata: { name: 'debian-12', version: '1', user: 'vm', disk: { sha256: 'a'.repeat(64), virtualSize: 1024 ** 3 }, boot: { type: 'kernel', cmdline: 'root=/dev/vda' } },
  paths: { dir: '/nonexistent', disk: '/nonexistent/disk.qcow2', kernel: '/nonexistent/kernel', initrd: '/nonexistent/initrd' },
} as unknown as InstalledBox;

async function setting(vmfile: object = {}) {
  const dir = await tempDir();
  const project = parseVmfile({ box: 'debian-12', warmStart: false, folders: [], ...vmfile }, `${dir}/Vmfile.ts`, dir);
  const machine = project.machines[0];
  if (machine === undefined) throw new Error('no machine');
  const paths = machinePaths(dir, machine.name);
  return { dir, project, machine, paths };
}

function plan(s: Awaited<ReturnType<typeof setting>>, driver: Driver, instance: Partial<Instance>): MachinePlan {
  return {
    machine: s.machine,
    instance: { name: s.machine.name, status: 'not created', paths: s.paths, driver, errors: [], ...instance },
    box,
    folders: [],
    accel: 'tcg',
    boot: 'kernel',
  };
}

const context = (reporter: Reporter, home = '/nonexistent/vmfile-home') => ({ home, reporter, env: {} });

/** A created machine on disk: its keys and record, as createMachine leaves them. */
async function created(paths: MachinePaths, state: Partial<MachineState> = {}): Promise<MachineState> {
  const { mkdir } = await import('node:fs/promises');
  await mkdir(paths.dir, { recursive: true });
  await generateKeyPair(paths.privateKey, 'test login');
  await generateKeyPair(paths.hostPrivateKey, 'test host key');
  await writeJsonAtomic(paths.provisioned, { steps: {} });
  const record: MachineState = { name: 'default', instanceId: 'vmfile-1', createdAt: '2026-12-01T00:00:00.000Z', box: { name: 'debian-12', version: '1', sha256: 'a'.repeat(64) }, user: 'vm', ...state };
  await writeMachineState(paths.state, record);
  return record;
}

describe('the start procedure', () => {
  test('a new machine: registered, created, seed written, started, flushed and ready; the record says so at the end', async () => {
    const s = await setting();
    const home = await tempDir();
    const fake = new RecordingDriver(s.paths);
    const reporter = recorder();
    const driver = fake.driver();
    // What the disk will stand on is registered before the disk is made: a prune from then on keeps it.
    let registered: unknown;
    const watching: Driver = { ...driver, create: async (...args) => ((registered = (await listProjects(home)).projects[0]?.machines), driver.create(...args)) };
    const result = await startMachine(plan(s, watching, {}), { project: s.project, provision: 'boot' }, context(reporter, home));
    expect(registered).toEqual({ default: { box: { name: 'debian-12', version: '1' }, states: [] } });
    expect(result).toMatchObject({ machine: 'default', outcome: 'booted', accel: 'tcg', stepsRun: 0 });
    expect(fake.calls).toEqual(['create', 'start']);
    expect(fake.specs[0]).toMatchObject({ fromSavedState: false, cpus: s.machine.cpus, memory: s.machine.memory });
    expect(fake.specs[0]?.fromWarmState).toBeUndefined();
    // Logged in with the machine's own key, against its pinned host key, and flushed the first boot.
    expect(fake.guest?.commands.map((c) => `${c.login}: ${c.command}`)).toContain('own: sync');
    const record = await readMachineState(s.paths.state);
    expect(record).toMatchObject({ initialized: true, sshPort: fake.guest?.port, accel: 'tcg', launch: { cpus: s.machine.cpus, memory: s.machine.memory, boot: 'kernel' } });
    expect(record).not.toHaveProperty('starting');
    expect(await readFile(`${s.paths.seedDir}/user-data`, 'utf8')).toContain('ssh_keys');
    expect(reporter.lines).toContain('done: Creating machine from box debian-12 1');
  });

  test('a resume: started from the saved memory, clock set, saved memory dropped only once the guest answered', async () => {
    const s = await setting();
    await created(s.paths, { initialized: true, suspendedAt: '2026-12-01T01:00:00.000Z', launch: { cpus: 1, memory: 512 * 1024 ** 2, boot: 'kernel' } });
    const fake = new RecordingDriver(s.paths);
    const state = await readMachineState(s.paths.state);
    const result = await startMachine(plan(s, fake.driver(), { status: 'suspended', ...(state === undefined ? {} : { state }) }), { project: s.project, provision: 'boot' }, context(recorder()));
    expect(result.outcome).toBe('resumed');
    expect(fake.calls).toEqual(['start', 'discardSavedState']);
    expect(fake.specs[0]).toMatchObject({ fromSavedState: true, cpus: 1, memory: 512 * 1024 ** 2 });
    expect(fake.guest?.commands.some((c) => c.command.includes('date') && c.command.includes('-s'))).toBe(true);
    expect(await readMachineState(s.paths.state)).not.toHaveProperty('suspendedAt');
  });

  test('a warm start cut short before its guest ran (memory not yet consumed): stopped, then started from the warm state again', async () => {
    const s = await setting();
    await created(s.paths, { login: 'warm-state', warmMemory: '/warm/memory.state', sshPort: 1, starting: 'boot', launch: { cpus: 1, memory: 1024 ** 3, boot: 'kernel', generation: '7f1c3b0e-0a4e-4d55-9c1b-2f0d6f1e8a11' } });
    await generateKeyPair(s.paths.warmLoginKey, 'the state login');
    await copyFile(s.paths.hostPublicKey, s.paths.warmHostKey);
    const fake = new RecordingDriver(s.paths);
    fake.running = true;
    fake.paused = true;
    const state = await readMachineState(s.paths.state);
    const reporter = recorder();
    const result = await startMachine(plan(s, fake.driver(), { status: 'running', pid: 4242, ...(state === undefined ? {} : { state }) }), { project: s.project, provision: 'boot' }, context(reporter));
    expect(result.outcome).toBe('booted');
    expect(reporter.lines).toContain('info: running (pid 4242), but its last boot did not finish; finishing it');
    expect(reporter.lines.some((line) => line.startsWith('info: its last start was cut short before the guest ran'))).toBe(true);
    expect(fake.calls).toEqual(['stop', 'start']);
    // The same warm memory, with the machine's generation ID kept.
    expect(fake.specs[0]).toMatchObject({ fromWarmState: '/warm/memory.state', generation: '7f1c3b0e-0a4e-4d55-9c1b-2f0d6f1e8a11' });
    // The take-over ran over the state's login, first of all.
    const first = fake.guest?.commands.find((c) => c.command !== 'true');
    expect(first?.login).toBe('warm');
    expect(first?.command).toContain('vmfile-first-login');
    const record = await readMachineState(s.paths.state);
    expect(record).not.toHaveProperty('warmMemory');
    expect(record).not.toHaveProperty('login');
    expect(record).toMatchObject({ initialized: true });
  });

  test('a warm start cut short after the memory was consumed but before the guest ran: continued, not loaded again', async () => {
    const s = await setting();
    await created(s.paths, { login: 'warm-state', sshPort: 1, starting: 'boot', launch: { cpus: 1, memory: 1024 ** 3, boot: 'kernel' } });
    const fake = new RecordingDriver(s.paths);
    await fake.bootGuest();
    fake.running = true;
    fake.paused = true;
    const state = await readMachineState(s.paths.state);
    const live = { ...state, sshPort: fake.guest?.port } as MachineState;
    await writeMachineState(s.paths.state, live);
    const reporter = recorder();
    await startMachine(plan(s, fake.driver(), { status: 'running', pid: 4242, state: live }), { project: s.project, provision: 'boot' }, context(reporter));
    expect(fake.calls).toEqual(['continue']);
    expect(reporter.lines).toContain('info: its guest was left paused by a start that was cut short; continued it');
    expect(await readMachineState(s.paths.state)).not.toHaveProperty('starting');
  });

  test('a halted machine whose first boot never finished is set up again by cloud-init (a new instance id), its disk kept', async () => {
    const s = await setting();
    await created(s.paths, { launch: { cpus: 1, memory: 1024 ** 3, boot: 'kernel' } });
    const fake = new RecordingDriver(s.paths);
    const state = await readMachineState(s.paths.state);
    const reporter = recorder();
    await startMachine(plan(s, fake.driver(), { status: 'halted', ...(state === undefined ? {} : { state }) }), { project: s.project, provision: 'boot' }, context(reporter));
    expect(reporter.lines).toContain('info: its first boot did not finish; cloud-init will set it up again');
    expect(fake.calls).toEqual(['start']);
    const record = await readMachineState(s.paths.state);
    expect(record?.instanceId).not.toBe('vmfile-1');
    expect(await readFile(`${s.paths.seedDir}/meta-data`, 'utf8')).toContain(record?.instanceId ?? '?');
  });

  test('a warm state that will not load is not tried again: the next start boots from the disk', async () => {
    const s = await setting();
    await created(s.paths, { login: 'warm-state', warmMemory: '/warm/memory.state' });
    const fake = new RecordingDriver(s.paths);
    const driver = fake.driver();
    const failing: Driver = { ...driver, start: async () => Promise.reject(new Error('its warm state could not be loaded')) };
    const state = await readMachineState(s.paths.state);
    const error = await startMachine(plan(s, failing, { status: 'halted', ...(state === undefined ? {} : { state }) }), { project: s.project, provision: 'boot' }, context(recorder())).catch((caught: unknown) => caught);
    expect((error as Error).message).toContain('could not be loaded');
    expect(await readMachineState(s.paths.state)).not.toHaveProperty('warmMemory');
  });
});

describe("a Vagrant box's first boot: its published login reaches nobody but vmfile", () => {
  afterEach(() => {
    delete process.env['VMFILE_VAGRANT_KEY'];
  });

  async function vagrantMachine() {
    const s = await setting();
    await created(s.paths, { user: 'vagrant', login: 'vagrant-insecure-key' });
    const insecure = join(await tempDir(), 'vagrant');
    await generateKeyPair(insecure, "Vagrant's published key");
    process.env['VMFILE_VAGRANT_KEY'] = insecure;
    const state = await readMachineState(s.paths.state);
    return { s, state };
  }

  test('with a guest agent: SSH stays closed until the take-over ran through the agent; then the machine is reached by its own login only', async () => {
    const { s, state } = await vagrantMachine();
    const fake = new RecordingDriver(s.paths);
    const ran: string[] = [];
    fake.agent = (argv) => (ran.push(argv.join(' ').slice(0, 40)), { code: 0, output: '' });
    const driver = fake.driver({ heldSsh: true, guestAgent: true });
    const reporter = recorder();
    await startMachine(plan(s, driver, { status: 'halted', ...(state === undefined ? {} : { state }) }), { project: s.project, provision: 'boot' }, context(reporter));
    expect(fake.specs[0]?.holdSsh).toBe(true);
    // Nothing reached SSH before the take-over: the agent took it, then the port opened.
    expect(fake.calls.slice(0, 4)).toEqual(['start', 'agent: true', 'agent: sh', 'openSsh']);
    expect(ran[1]).toMatch(/^sh -c set -eu/);
    expect(fake.guest?.commands.map((c) => c.login)).not.toContain('insecure');
    expect(fake.guest?.commands.length).toBeGreaterThan(0);
    const record = await readMachineState(s.paths.state);
    expect(record).not.toHaveProperty('login');
    expect(record).not.toHaveProperty('sshHeld');
    expect(reporter.lines).toContain("done: Installing the machine's own keys through the guest agent");
  });

  test('an agent that has opened its channel but does not answer yet is waited for: SSH is not opened, not even for a probe', async () => {
    const { s, state } = await vagrantMachine();
    const fake = new RecordingDriver(s.paths);
    let pings = 0;
    // A guest under load: its agent has started (channel open) but answers only the third ping.
    fake.agentChannel = () => true;
    fake.agent = (argv) => (argv[0] === 'true' && ++pings < 3 ? undefined : { code: 0, output: '' });
    const driver = fake.driver({ heldSsh: true, guestAgent: true });
    await startMachine(plan(s, driver, { status: 'halted', ...(state === undefined ? {} : { state }) }), { project: s.project, provision: 'boot' }, context(recorder()));
    expect(fake.calls.slice(0, 6)).toEqual(['start', 'agent: true', 'agent: true', 'agent: true', 'agent: sh', 'openSsh']);
    expect(fake.calls).not.toContain('closeSsh');
    expect(fake.guest?.commands.map((c) => c.login)).not.toContain('insecure');
  });

  test('without one: SSH opens once sshd answers, the take-over is the first thing and ends every other session, and the rest goes over a pinned login', async () => {
    const { s, state } = await vagrantMachine();
    const fake = new RecordingDriver(s.paths);
    const driver = fake.driver({ heldSsh: true, guestAgent: true });
    const reporter = recorder();
    await startMachine(plan(s, driver, { status: 'halted', ...(state === undefined ? {} : { state }) }), { project: s.project, provision: 'boot' }, context(reporter));
    // No agent answers; the port opens for one greeting, closes, and opens for good once sshd answered.
    expect(fake.calls).toEqual(['start', 'agent: true', 'openSsh', 'closeSsh', 'agent: true', 'openSsh']);
    expect(reporter.lines.some((line) => line.includes('has no QEMU guest agent'))).toBe(true);
    const commands = fake.guest?.commands ?? [];
    const takeOver = commands.findIndex((c) => c.command.includes('vmfile-first-login'));
    // The first command over the published login is the take-over, told to end other sessions.
    expect(commands.slice(0, takeOver).map((c) => c.command)).toEqual(commands.slice(0, takeOver).map(() => 'true'));
    expect(commands[takeOver]?.login).toBe('insecure');
    expect(commands[takeOver]?.command).toMatch(/ yes$/);
    // Then a login of the machine's own, its host key pinned, for everything after.
    expect(commands.slice(takeOver + 1).map((c) => c.login)).toEqual(['own']);
    expect(await readMachineState(s.paths.state)).not.toHaveProperty('login');
  });
});

/**
 * The requirements that reach the guest: SSH answering (the machine's own login, or
 * first the box's or the warm state's), the take-over that makes it this machine, and
 * for a Vagrant box on a driver that can hold its SSH port, the first login taken while
 * nothing else can reach it: through the QEMU guest agent where the box has one, else
 * over SSH the moment sshd answers, ending whatever else logged in meanwhile.
 */
import { readFile, rm } from 'node:fs/promises';
import { GuestError, lastLines } from '../errors.js';
import { waitForSshGreeting } from '../ssh/banner.js';
import { SshTimeout, waitForSsh, type SshSession, type SshTarget } from '../ssh/client.js';
import { inPhase } from '../ui/reporter.js';
import { sshTargetFor } from './communicator.js';
import { firstLogin } from './first-login.js';
import { session, type GuestStart } from './guest-start.js';
import { overSsh, takeOver, type TakeOverRunner } from './take-over.js';

/**
 * Waits for an SSH login: with the machine's own key and its host key pinned, and first
 * with the box's or the warm state's own login while the machine still has it.
 */
export async function sshAnswers(c: GuestStart): Promise<void> {
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
 * Over the first login: the machine's own keys, machine-id and hostname in (take-over.ts),
 * the box's or the warm state's out. The take-over ends with a sync, which flushed the
 * first boot's work too. A session that did not pin the host key (a Vagrant box's
 * published login) is closed after it, and the rest goes over a pinned login.
 */
export async function becomeItself(c: GuestStart): Promise<void> {
  const { machine, paths } = c;
  const state = c.record.state;
  const first = c.firstLogin;
  if (first === undefined) throw new Error('the take-over ran before the first login was attempted');
  const tookOver = first.overOwnLoginToo || first.session;
  const unpinned = first.session && first.target?.hostKey === 'unpinned';
  if (tookOver) {
    const options = { ...first.options, ...(unpinned ? { endSessions: true } : {}) };
    await inPhase(c.reporter, machine.name, first.progress, () => takeOver(overSsh(session(c)), machine.name, paths, state.user, machine.hostname, options));
  }
  await c.record.update(({ login: _login, ...own }) => ({ ...own, ...(tookOver ? { initialized: true } : {}) }));
  await Promise.all([rm(paths.warmLoginKey, { force: true }), rm(paths.warmHostKey, { force: true })]);
  if (unpinned) {
    session(c).close();
    const pinned = await sshTargetFor(paths, c.record.state, c.sshPort, c.driver.sshHop());
    c.session = await inPhase(c.reporter, machine.name, 'Logging in again, its own host key pinned', () => waitFor(c, [pinned], Date.now() + 60_000, () => {}));
  }
}

/**
 * A Vagrant box started with its SSH port held: the first login is taken while nothing
 * else can reach the guest. With the QEMU guest agent (which many boxes have), the
 * take-over runs through it, and SSH opens on a machine that is already its own. Without
 * one, SSH opens the moment sshd answers (found by forwarding the port for the time of
 * its greeting, then taking it away again), and the take-over that follows ends any
 * session but its own: the window is the seconds of one login, and vmfile says so.
 * The probe itself opens the port for a second, so it is never made once the guest has
 * opened the agent's channel (Driver.guestAgentChannelOpen): under load sshd can answer
 * well before the agent does, and a probe then let anyone with the published key in.
 */
export async function takeFirstLogin(c: GuestStart): Promise<void> {
  const { machine, paths } = c;
  const started = Date.now();
  const deadline = started + machine.bootTimeout * 1000;
  const agent = (timeoutMs: number): TakeOverRunner => async (argv, stdin) => (await c.driver.execInGuest(argv, { stdin, timeoutMs })) ?? { code: 255, output: 'the guest agent did not answer' };
  const agentAnswers = async (timeoutMs: number) => (await c.driver.execInGuest(['true'], { timeoutMs })) !== undefined;
  const how = await inPhase(c.reporter, machine.name, 'Taking the first login before SSH is open to anyone', async (phase) => {
    // Once the guest has opened the agent's channel, an agent is there: wait for it and
    // never open SSH (a slow guest may run sshd well before its agent answers).
    const agentThere = async () => (await c.driver.guestAgentChannelOpen?.()) === true;
    for (;;) {
      if (await agentAnswers(2_000)) return 'agent';
      if (!(await agentThere())) {
        const port = await c.driver.openSsh(c.sshPort);
        const answers = await waitForSshGreeting(port, Date.now() + 1_000).finally(() => c.driver.closeSsh(port));
        // sshd runs: a guest agent in the box starts about as soon.
        if (answers && !(await agentAnswers(5_000)) && !(await agentThere())) return 'ssh';
        if (answers) continue;
      }
      if (Date.now() > deadline) {
        throw new GuestError(`machine "${machine.name}": neither its guest agent nor its SSH server answered within ${machine.bootTimeout} s. Last console lines:\n${await consoleTail(c.driver.consoleLog())}`, {
          hint: `the machine is left running for inspection; vmfile halt --force stops it, or raise bootTimeout in the Vmfile`,
        });
      }
      phase.progress(`waiting for the guest agent${(await agentThere()) ? ' (started)' : ' or SSH'} (${Math.round((Date.now() - started) / 1000)} s of ${machine.bootTimeout} s)`);
    }
  });
  if (how === 'agent') {
    await inPhase(c.reporter, machine.name, "Installing the machine's own keys through the guest agent", () =>
      takeOver(agent(60_000), machine.name, paths, c.record.state.user, machine.hostname, {}),
    );
    await c.record.update(({ login: _login, ...own }) => ({ ...own, initialized: true }));
  } else {
    c.reporter.notice(
      `machine "${machine.name}": its box has no QEMU guest agent, so its first login goes over SSH with Vagrant's published key; the SSH port opens now, and the take-over ends every other session it finds (install qemu-guest-agent in the box to close even that window)`,
    );
  }
  const port = await c.driver.openSsh(c.sshPort);
  c.sshPort = port;
  await c.record.update(({ sshHeld: _held, ...open }) => ({ ...open, sshPort: port }));
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

/**
 * The provisioner: decides which steps run and runs them over the communicator.
 *
 * Scripts are uploaded over SFTP and run by path with their arguments quoted one by
 * one (src/ssh/quote.ts), so no Vmfile value is ever parsed by a shell. Privileged
 * steps run through `sudo -n`, as in Vagrant.
 */
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { posix, resolve } from 'node:path';
import { ConfigError, GuestError } from '../errors.js';
import type { SshSession } from '../ssh/client.js';
import { shellCommand } from '../ssh/quote.js';
import { uploadEntries } from '../ssh/upload-tree.js';
import type { Reporter } from '../ui/reporter.js';
import type { ProvisionStep } from '../vmfile/steps.js';
import { markDone, type ProvisionRecord } from '../store/provision-record.js';
import { runAnsible, type AnsibleHost } from './ansible.js';
import { hashOutputs } from './outputs.js';
import { addedOrChanged, installedPackages, type Installed } from './step-packages.js';

/**
 * `boot`: a normal vmup (once steps that never succeeded, and always steps).
 * `all`: vmup --provision and vmfile provision (once and always steps, again).
 * `only`: the steps named explicitly, whatever their policy.
 */
export type ProvisionMode = { kind: 'boot' } | { kind: 'all' } | { kind: 'only'; names: readonly string[] };

/** A step that ran and exited non-zero (not one that could not be run). */
export class StepFailedError extends GuestError {}

export function shouldRun(step: ProvisionStep, mode: ProvisionMode, record: ProvisionRecord): boolean {
  switch (mode.kind) {
    case 'only':
      return mode.names.includes(step.id);
    case 'all':
      return step.run !== 'never';
    case 'boot':
      return step.run === 'always' || (step.run === 'once' && record.steps[step.id] === undefined);
  }
}

export interface ProvisionContext {
  machine: string;
  user: string;
  projectDir: string;
  session: SshSession;
  reporter: Reporter;
  recordPath: string;
  record: ProvisionRecord;
  /** The running machines of the Vmfile and how to reach them, for Ansible steps. */
  ansibleHosts?: () => Promise<AnsibleHost[]>;
  /** Told the digests of a step's declared outputs (guest path -> sha256) after it succeeded. */
  onOutputs?: (step: ProvisionStep, outputs: Record<string, string>) => Promise<void>;
  /** Runs once, before the first step that runs (the pinned packages' apt source: provision/pinned-source.ts). */
  beforeSteps?: () => Promise<void>;
  /** Told which Debian packages a step added or changed in the guest, after it succeeded (not asked for a file step). */
  onInstalled?: (step: ProvisionStep, changed: Installed[]) => Promise<void>;
}

/** Every step's local files must exist before the machine boots. */
export async function checkStepFiles(steps: readonly ProvisionStep[], projectDir: string, machine: string): Promise<void> {
  for (const step of steps) {
    const local = step.kind === 'script' ? step.script : step.kind === 'file' ? step.source : step.kind === 'ansible' ? step.playbook : undefined;
    if (local === undefined) continue;
    try {
      await stat(resolve(projectDir, local));
    } catch {
      const field = step.kind === 'script' ? 'script' : step.kind === 'ansible' ? 'ansible.playbook' : 'file.source';
      throw new ConfigError(`machine "${machine}": provisioning step "${step.name}": ${field} ${resolve(projectDir, local)} does not exist`, {
        hint: 'paths in the Vmfile are relative to the directory holding it',
      });
    }
  }
}

export async function runSteps(steps: readonly ProvisionStep[], mode: ProvisionMode, context: ProvisionContext): Promise<number> {
  let ran = 0;
  for (const step of steps) {
    if (!shouldRun(step, mode, context.record)) continue;
    if (ran === 0) {
      await waitForCloudInit(context);
      await context.beforeSteps?.();
    }
    const watched = context.onInstalled !== undefined && step.kind !== 'file';
    const before = watched ? await installedPackages(context.session) : undefined;
    const phase = context.reporter.phase(context.machine, `Provisioning step "${step.name}"`);
    let code: number;
    try {
      code = await runStep(step, context);
    } catch (error) {
      phase.fail();
      throw error;
    }
    if (code !== 0) {
      phase.fail();
      throw new StepFailedError(`machine "${context.machine}": provisioning step "${step.name}" failed with exit code ${code}`, {
        hint: 'the machine is still running; fix the step, then run: vmfile provision',
      });
    }
    phase.done();
    if (before !== undefined) await context.onInstalled?.(step, addedOrChanged(before, await installedPackages(context.session)));
    if (step.outputs !== undefined) await context.onOutputs?.(step, await hashOutputs(context.session, step.outputs, `machine "${context.machine}": provisioning step "${step.name}"`));
    // A once step is recorded as done only when what it wrote is on the guest's disk: a
    // power-off (QEMU killed) must not keep the record and lose the step's effect.
    if (step.run === 'once') await context.session.exec('sync');
    await markDone(context.recordPath, context.record, step.id, await stepHash(step, context.projectDir));
    ran++;
  }
  return ran;
}

/**
 * A guest command that returns once cloud-init is done: at once without cloud-init;
 * at once when its last stage's result file lists no error (a machine started from a
 * warm state has the file from the generic boot), sparing `cloud-init status`, a
 * Python start of several seconds under TCG; else that command's wait and exit code
 * (0 done, 2 done with recoverable errors, 1 failed).
 */
export const CLOUD_INIT_WAIT = [
  'command -v cloud-init >/dev/null 2>&1 || exit 0',
  `grep -qs '"errors": \\[\\]' /run/cloud-init/result.json && exit 0`,
  'cloud-init status --wait >/dev/null 2>&1',
].join('; ');

/**
 * On a box that runs all of cloud-init's modules before sshd starts (it says so in
 * /etc/vmfile/cloud-init-before-ssh; debian-12 does), steps need not wait for the final
 * stage, which only records the result: its network stage has finished and no stage
 * lists an error. Anything else goes on to CLOUD_INIT_WAIT, which reports errors.
 */
const STEPS_WAIT = [
  `if [ -e /etc/vmfile/cloud-init-before-ssh ] && sed -n '/^  "init": {/,/}/p' /run/cloud-init/status.json 2>/dev/null | grep -q '"finished": [0-9]' && ! grep '"errors"' /run/cloud-init/status.json | grep -qv '"errors": \\[\\],\\?$'; then exit 0; fi`,
  CLOUD_INIT_WAIT,
].join('; ');

/**
 * SSH answers while cloud-init's config and final stages still run (measured: 5-7 s
 * more on a first boot under TCG); steps wait for them so they never race it for apt
 * or users.
 */
async function waitForCloudInit(context: ProvisionContext): Promise<void> {
  const phase = context.reporter.phase(context.machine, 'Waiting for cloud-init to finish');
  const code = await context.session.exec(STEPS_WAIT);
  // 0 done, 2 done with recoverable warnings; 1 means cloud-init itself failed.
  phase.done(code === 0 || code === 2 ? undefined : `cloud-init reported an error (exit ${code}); see /var/log/cloud-init.log in the guest`);
}

async function runStep(step: ProvisionStep, context: ProvisionContext): Promise<number> {
  const { session } = context;
  const output = {
    onStdout: (chunk: string) => context.reporter.output(context.machine, step.name, 'stdout', chunk),
    onStderr: (chunk: string) => context.reporter.output(context.machine, step.name, 'stderr', chunk),
  };
  const scratch = `/tmp/vmfile-${randomBytes(6).toString('hex')}`;
  if (step.kind === 'file') {
    await session.upload(resolve(context.projectDir, step.source), scratch);
    return session.exec(fileInstallCommand(scratch, step.destination, { user: context.user, home: await guestHome(context) }), output);
  }
  if (step.kind === 'ansible') {
    const hosts = (await context.ansibleHosts?.()) ?? [];
    return runAnsible(step, { machine: context.machine, projectDir: context.projectDir, hosts, onLine: (line) => output.onStdout(`${line}\n`) });
  }
  const body = step.kind === 'shell' ? step.inline : await readFile(resolve(context.projectDir, step.script), 'utf8');
  const local = `${scratch}.local`;
  await writeScratch(session, local, body);
  return session.exec(scriptCommand(local, body, step.kind === 'script' ? step.args : [], step.env, step.privileged), output);
}

/** The login user's home as the guest has it (not every box puts it under /home). */
async function guestHome(context: ProvisionContext): Promise<string> {
  const result = await context.session.capture('printf %s "$HOME"');
  const home = result.stdout.trim();
  if (result.code !== 0 || !home.startsWith('/')) throw new GuestError(`machine "${context.machine}": could not read the home directory of ${context.user} in the guest`);
  return home;
}

async function writeScratch(session: SshSession, remote: string, body: string): Promise<void> {
  // Through a temporary local file would need cleanup; upload from memory via stdin instead.
  const code = await session.exec(`umask 077 && cat > ${shellCommand([remote])} <<'VMFILE_EOF_${remote.slice(-12)}'\n${body}${body.endsWith('\n') ? '' : '\n'}VMFILE_EOF_${remote.slice(-12)}\n`);
  if (code !== 0) throw new GuestError(`could not write ${remote} in the guest (exit code ${code})`, { hint: "is the guest's /tmp full or read-only?" });
}

/** The command that runs an uploaded script: its own interpreter if it has a #! line, else bash. */
export function scriptCommand(path: string, body: string, args: readonly string[], env: Record<string, string>, privileged: boolean): string {
  const interpreter = body.startsWith('#!') ? [path] : ['bash', path];
  const envArgs = Object.entries(env).map(([key, value]) => `${key}=${value}`);
  const argv = [...(privileged ? ['sudo', '-n', '-H'] : []), 'env', ...envArgs, ...interpreter, ...args];
  const quotedPath = shellCommand([path]);
  return `chmod 0755 ${quotedPath} && { ${shellCommand(argv)}; status=$?; rm -f ${quotedPath}; exit $status; }`;
}

/**
 * Installs an uploaded file or tree at `destination` (parents created). Inside the
 * user's home it belongs to the user; elsewhere it belongs to root, like a package file.
 */
export function fileInstallCommand(scratch: string, destination: string, owner: { user: string; home: string }): string {
  const { user, home } = owner;
  const owned = destination === home || destination.startsWith(`${home}/`);
  const steps = [
    shellCommand(['sudo', '-n', 'mkdir', '-p', '--', posix.dirname(destination)]),
    shellCommand(['sudo', '-n', 'cp', '-rT', '--preserve=mode,timestamps', '--', scratch, destination]),
    owned ? shellCommand(['sudo', '-n', 'chown', '-R', `${user}:`, '--', destination]) : 'true',
  ];
  return `${steps.join(' && ')}; status=$?; rm -rf ${shellCommand([scratch])}; exit $status`;
}

/**
 * Identifies what a step did, so a changed step can be told from the one that ran; it
 * also keys the step's provisioning layer, which every project on the host may start
 * from. So it covers all the step gives the guest: its definition, its script's or
 * playbook's bytes, and for a file step every entry the upload copies (ssh/upload-tree.ts:
 * links followed, names, kinds and modes, each file's bytes). Every part is framed by
 * its length, so no two different steps feed the hash the same bytes.
 */
export async function stepHash(step: ProvisionStep, projectDir: string): Promise<string> {
  // Whether a step may be cached, and which of its files it declares as outputs, say nothing about what it does.
  const { cache: _cache, outputs: _outputs, ...what } = step;
  const hash = createHash('sha256');
  framed(hash, STEP_HASH_FORMAT);
  framed(hash, JSON.stringify(what));
  if (step.kind === 'script') framed(hash, await readFile(resolve(projectDir, step.script)));
  if (step.kind === 'ansible') framed(hash, await readFile(resolve(projectDir, step.playbook)));
  if (step.kind === 'file') {
    for await (const entry of uploadEntries(resolve(projectDir, step.source))) {
      framed(hash, `${entry.kind} ${entry.mode.toString(8)}`);
      framed(hash, String(entry.names.length));
      for (const name of entry.names) framed(hash, name);
      if (entry.kind === 'file') framed(hash, await fileDigest(entry.local));
    }
  }
  return hash.digest('hex');
}

/** Changes every step's hash when what it covers changes. */
const STEP_HASH_FORMAT = 'vmfile step hash 2';

function framed(hash: Hash, part: string | Buffer): void {
  const bytes = typeof part === 'string' ? Buffer.from(part, 'utf8') : part;
  const length = Buffer.alloc(8);
  length.writeBigUInt64BE(BigInt(bytes.length));
  hash.update(length).update(bytes);
}

/** A file's sha256, streamed (a file step may copy large files). */
async function fileDigest(path: string): Promise<Buffer> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest();
}

/**
 * Once steps that completed but whose definition or files differ now. A step whose file
 * cannot be read is left out: the step itself will say why when it runs.
 */
export async function changedSteps(steps: readonly ProvisionStep[], record: ProvisionRecord, projectDir: string): Promise<{ step: ProvisionStep; ranAt: string }[]> {
  const changed = [];
  for (const step of steps) {
    const done = record.steps[step.id];
    if (step.run !== 'once' || done === undefined) continue;
    const now = await stepHash(step, projectDir).catch(() => done.hash);
    if (now !== done.hash) changed.push({ step, ranAt: done.at });
  }
  return changed;
}

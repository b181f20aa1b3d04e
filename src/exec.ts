/**
 * The only wrapper around execa. Host programs are always run from an argv array
 * (never a shell string); a failure becomes an ExternalCommandError that keeps the
 * command, its arguments and its stderr; a missing program names its Debian package.
 * It also keeps the list of what vmfile waits for, which an interrupt must reach (cli/main.ts).
 */
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { ExternalCommandError, UserError } from './errors.js';

/** Debian package that ships each host program vmfile runs. */
const debianPackage: Record<string, string> = {
  'qemu-system-x86_64': 'qemu-system-x86',
  'qemu-img': 'qemu-utils',
  mmdebstrap: 'mmdebstrap',
  mke2fs: 'e2fsprogs',
  debugfs: 'e2fsprogs',
  dumpe2fs: 'e2fsprogs',
  e2fsck: 'e2fsprogs',
  zerofree: 'zerofree',
  'ssh-keygen': 'openssh-client',
  ssh: 'openssh-client',
  scp: 'openssh-client',
  git: 'git',
  'ansible-playbook': 'ansible-core',
  rsync: 'rsync',
  tar: 'tar',
  virsh: 'libvirt-clients',
  genisoimage: 'genisoimage',
  ruby: 'ruby',
};

export interface RunOptions {
  cwd?: string;
  env?: Record<string, string>;
  input?: string;
  /** Milliseconds before the command is killed. */
  timeout?: number;
  /** Called with each line the command prints on stdout or stderr (for progress). */
  onLine?: (line: string) => void;
  /** What the command was doing, for the error message ("create overlay for machine web"). */
  purpose?: string;
  /** Non-zero exit codes that are answers, not failures (e2fsck: 1 = errors fixed). */
  allowExitCodes?: readonly number[];
  /** Aborting it ends the command (SIGTERM); it then fails as "cancelled". */
  signal?: AbortSignal;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

/** Something vmfile waits for that an interrupt must reach: a program it runs, or the Vmfile's thread. */
interface Interruptible {
  kill(signal: NodeJS.Signals): unknown;
}

/** What vmfile waits for now (not the detached programs, such as QEMU). */
const running = new Set<Interruptible>();
/** Those an interrupt has reached: when vmfile exits they are left to finish their own cleanup. */
const told = new WeakSet<Interruptible>();
/** The signal that interrupted vmfile: what starts after it is told at once. */
let interruption: NodeJS.Signals | undefined;

/**
 * Passes a signal on to everything vmfile waits for, and to whatever starts later, so each
 * cleans up (mmdebstrap unmounts its chroot). They get it once: vmfile does not signal
 * them again when it exits, even if they are still cleaning up then.
 */
export function signalRunning(signal: NodeJS.Signals): void {
  interruption = signal;
  for (const child of running) tell(child, signal);
}

function tell(child: Interruptible, signal: NodeJS.Signals): void {
  told.add(child);
  child.kill(signal);
}

/**
 * Starts work that an interrupt ends with its `stop` (the loader ends the Vmfile's thread
 * with it) and waits for it. After an interrupt nothing new is started: a UserError says so.
 */
export async function interruptible<T>(what: string, start: () => { done: Promise<T>; stop: (signal: NodeJS.Signals) => void }): Promise<T> {
  if (interruption !== undefined) throw new UserError(`${what}: not started, vmfile was interrupted by ${interruption}`);
  const { done, stop } = start();
  const token = { kill: stop };
  track(token);
  try {
    return await done;
  } finally {
    running.delete(token);
  }
}

let exitHooked = false;

/**
 * A program still running when vmfile exits for any other reason than an interrupt (a
 * failure elsewhere in a Promise.all) is stopped with it, as execa's own `cleanup` would;
 * execa's is off because it would signal a program an interrupt already told, a second time.
 */
function track(child: Interruptible): void {
  if (!exitHooked) {
    exitHooked = true;
    process.on('exit', () => {
      for (const left of running) if (!told.has(left)) left.kill('SIGTERM');
    });
  }
  running.add(child);
  if (interruption !== undefined) tell(child, interruption);
}

export async function run(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const purpose = options.purpose ?? `run ${command}`;
  // Imported on first use: execa is the slowest module to load and most commands never run a program.
  const { execa } = await import('execa');
  try {
    const child = execa(command, args, {
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
      ...(options.env === undefined ? {} : { env: options.env }),
      ...(options.input === undefined ? { stdin: 'ignore' as const } : { input: options.input }),
      ...(options.timeout === undefined ? {} : { timeout: options.timeout }),
      ...(options.signal === undefined ? {} : { cancelSignal: options.signal }),
      ...(options.onLine === undefined ? {} : { lines: false }),
      stripFinalNewline: true,
      cleanup: false,
    });
    if (options.onLine !== undefined) {
      const onLine = options.onLine;
      for (const stream of [child.stdout, child.stderr]) {
        let pending = '';
        stream?.on('data', (chunk: Buffer) => {
          pending += chunk.toString('utf8');
          // Progress output (qemu-img -p, mmdebstrap) rewrites one line with carriage returns.
          const lines = pending.split(/\r\n|\r|\n/);
          pending = lines.pop() ?? '';
          for (const line of lines) if (line !== '') onLine(line);
        });
      }
    }
    track(child);
    const result = await child.finally(() => running.delete(child));
    return { stdout: String(result.stdout ?? ''), stderr: String(result.stderr ?? ''), exitCode: 0 };
  } catch (error) {
    const record = (error ?? {}) as { exitCode?: unknown; stdout?: unknown; stderr?: unknown };
    if (typeof record.exitCode === 'number' && options.allowExitCodes?.includes(record.exitCode) === true) {
      return { stdout: String(record.stdout ?? ''), stderr: String(record.stderr ?? ''), exitCode: record.exitCode };
    }
    throw toExternalError(error, command, args, purpose);
  }
}

/** True when `command` can be found on PATH (searched in-process: no shell, no spawn). */
export async function haveCommand(command: string, path = process.env['PATH'] ?? ''): Promise<boolean> {
  for (const dir of path.split(delimiter)) {
    if (dir === '') continue;
    try {
      await access(join(dir, command), constants.X_OK);
      return true;
    } catch {
      // Not in this directory.
    }
  }
  return false;
}

export function packageFor(command: string): string | undefined {
  return debianPackage[command];
}

function toExternalError(error: unknown, command: string, args: readonly string[], purpose: string): ExternalCommandError {
  const record = (error ?? {}) as { code?: unknown; stderr?: unknown; exitCode?: unknown; isCanceled?: unknown; timedOut?: unknown; shortMessage?: unknown };
  const stderr = typeof record.stderr === 'string' ? record.stderr : '';
  if (record.code === 'ENOENT') {
    const pkg = packageFor(command);
    return new ExternalCommandError(`${purpose}: ${command} is not installed`, command, args, '', {
      hint: pkg === undefined ? `install ${command} and try again` : `install it with: sudo apt-get install ${pkg}`,
      cause: error,
    });
  }
  if (record.isCanceled === true) {
    return new ExternalCommandError(`${purpose}: cancelled`, command, args, stderr, { cause: error });
  }
  if (record.timedOut === true) {
    return new ExternalCommandError(`${purpose}: ${command} timed out`, command, args, stderr, { cause: error });
  }
  const code = typeof record.exitCode === 'number' ? `exit code ${record.exitCode}` : 'failed';
  return new ExternalCommandError(`${purpose}: ${command} ${code}`, command, args, stderr, { cause: error });
}

/**
 * Runs a program attached to this terminal (vmssh) and resolves with its exit code;
 * a non-zero code is the program's answer, not a failure of vmfile.
 */
export async function runAttached(command: string, args: readonly string[]): Promise<number> {
  const { execa } = await import('execa');
  try {
    const child = execa(command, args, { stdio: 'inherit', reject: false, cleanup: false });
    track(child);
    const result = await child.finally(() => running.delete(child));
    if (result.failed && result.exitCode === undefined) throw result;
    return result.exitCode ?? 255;
  } catch (error) {
    throw toExternalError(error, command, args, `run ${command}`);
  }
}

/** Fails with the Debian package to install when any of `commands` is missing. */
export async function requireCommands(commands: readonly string[], purpose: string): Promise<void> {
  const missing: string[] = [];
  for (const command of commands) if (!(await haveCommand(command))) missing.push(command);
  if (missing.length === 0) return;
  const packages = [...new Set(missing.map((command) => packageFor(command) ?? command))];
  throw new ExternalCommandError(`${purpose}: ${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} not installed`, missing[0] ?? '', [], '', {
    hint: `install with: sudo apt-get install ${packages.join(' ')}`,
  });
}

/**
 * Starts a long-lived helper (virtiofsd, the network hub) detached from vmfile, so it
 * outlives this command; its output is discarded. Resolves once it has been spawned.
 */
export async function spawnDetached(command: string, args: readonly string[]): Promise<void> {
  const { execa } = await import('execa');
  try {
    const child = execa(command, args, { detached: true, stdio: 'ignore', reject: false, cleanup: false });
    child.unref();
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', () => resolve());
      child.once('error', reject);
    });
  } catch (error) {
    throw toExternalError(error, command, args, `start ${command}`);
  }
}

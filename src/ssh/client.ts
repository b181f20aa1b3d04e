/**
 * The communicator: commands and uploads over SSH (ssh2), and the readiness wait.
 *
 * Contract: `connect` resolves only after key authentication succeeded against the
 * pinned host key; every method on a closed session rejects. `exec` resolves with the
 * remote exit code (never rejects for a non-zero one); output is streamed to the
 * callbacks as it arrives. Every failure is a GuestError naming the machine: ssh2's own
 * errors ("read ECONNRESET") never reach the user bare. A connection that cannot be made
 * or is lost is an SshConnectError, which the readiness wait retries.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { posix } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawn } from 'node:child_process';
import { Duplex } from 'node:stream';
import { Client, type SFTPWrapper } from 'ssh2';
import { GuestError, VmfileError } from '../errors.js';
import { uploadEntries } from './upload-tree.js';

export interface SshTarget {
  /** Who this is, for messages: 'machine "web"'. */
  label: string;
  host: string;
  port: number;
  user: string;
  privateKey: string;
  /**
   * Raw public key blob the guest must present. 'unpinned' accepts any: only for the
   * first login to a Vagrant box, whose host key is not yet known (guest/first-login.ts).
   */
  hostKey: Buffer | 'unpinned';
  /**
   * A program whose stdin and stdout are the TCP stream to host:port (ssh/hop.ts), for a
   * guest on another host; absent: a direct connection.
   */
  via?: readonly string[];
}

export interface ExecCallbacks {
  /** Written to the command's standard input, which is then closed. */
  stdin?: string;
  onStdout?: (chunk: string) => void;
  onStderr?: (chunk: string) => void;
}

/** SSH could not be reached, or the connection was lost: the guest's sshd is not (or no longer) answering. */
export class SshConnectError extends GuestError {}

/** The guest is not the machine vmfile made: never retried. */
export class SshHostKeyError extends GuestError {}

/** The machine's own login key cannot be used: never retried. */
export class SshKeyError extends GuestError {}

const SSH_HINT = "check that the guest's sshd runs (vmfile status; the console log is serial.log in the machine's directory); vmfile reload restarts the machine";

export class SshSession {
  private readonly pending = new Set<(error: Error) => void>();
  private lost: string | undefined;

  private constructor(
    private readonly client: Client,
    /** Whom the session logged in as (waitForSsh may try several). */
    readonly target: SshTarget,
  ) {
    // ssh2 may emit errors after ready (a dropped connection); the pending operations report them.
    client.on('error', (error) => (this.lost = error.message));
    client.on('close', () => {
      const error = new SshConnectError(`${target.label}: the SSH connection was lost${this.lost === undefined ? '' : ` (${this.lost})`}`, { hint: SSH_HINT });
      this.lost ??= 'closed';
      for (const reject of this.pending) reject(error);
      this.pending.clear();
    });
  }

  static connect(target: SshTarget, timeoutMs = 10_000): Promise<SshSession> {
    return new Promise((resolve, reject) => {
      const client = new Client();
      let hostKeyMismatch = false;
      let settled = false;
      try {
        client
          .once('ready', () => {
            settled = true;
            resolve(new SshSession(client, target));
          })
          .on('error', (error) => {
            if (settled) return;
            settled = true;
            client.end();
            reject(
              hostKeyMismatch
                ? new SshHostKeyError(`${target.label}: the guest presented an unexpected SSH host key`, {
                    cause: error,
                    hint: 'something else answers on its SSH port, or its host key was replaced; vmfile destroy and vmup make a new machine',
                  })
                : new SshConnectError(`${target.label}: cannot log in over SSH on ${target.host}:${target.port} (${error.message})`, { cause: error, hint: SSH_HINT }),
            );
          })
          .connect({
            ...(target.via === undefined ? { host: target.host, port: target.port } : { sock: hopStream(client, target.via) }),
            username: target.user,
            privateKey: target.privateKey,
            readyTimeout: timeoutMs,
            hostVerifier: (key: Buffer) => {
              const ok = target.hostKey === 'unpinned' || key.equals(target.hostKey);
              if (!ok) hostKeyMismatch = true;
              return ok;
            },
          });
      } catch (error) {
        // ssh2 throws at once for a key it cannot parse (a damaged key file in .vmfile/).
        settled = true;
        reject(new SshKeyError(`${target.label}: its SSH login key cannot be used (${(error as Error).message})`, { cause: error, hint: 'vmfile destroy and vmup make the machine again with new keys' }));
      }
    });
  }

  exec(command: string, callbacks: ExecCallbacks = {}): Promise<number> {
    return this.guarded('run a command', (resolve, reject) => {
      this.client.exec(command, (error, stream) => {
        if (error) return reject(error);
        stream.on('data', (chunk: Buffer) => callbacks.onStdout?.(chunk.toString('utf8')));
        stream.stderr.on('data', (chunk: Buffer) => callbacks.onStderr?.(chunk.toString('utf8')));
        if (callbacks.stdin !== undefined) stream.end(callbacks.stdin);
        // A command killed by a signal has no exit code; report it like a shell would.
        stream.once('close', (code: number | null, signalName?: string) => resolve(code ?? (signalName === undefined ? 255 : 128 + 15)));
      });
    });
  }

  /** One operation on the connection: its ssh2 errors, and a lost connection, become GuestErrors naming the machine. */
  private guarded<T>(what: string, body: (resolve: (value: T) => void, reject: (error: Error) => void) => void): Promise<T> {
    if (this.lost !== undefined) return Promise.reject(new SshConnectError(`${this.target.label}: the SSH connection was lost (${this.lost})`, { hint: SSH_HINT }));
    return new Promise<T>((resolve, reject) => {
      const fail = (error: Error): void => {
        this.pending.delete(fail);
        // A typed error already says what went wrong (an upload source that cannot be copied is the Vmfile's).
        reject(error instanceof VmfileError ? error : new GuestError(`${this.target.label}: could not ${what} over SSH: ${error.message}`, { cause: error, hint: SSH_HINT }));
      };
      this.pending.add(fail);
      try {
        body((value) => {
          this.pending.delete(fail);
          resolve(value);
        }, fail);
      } catch (error) {
        fail(error instanceof Error ? error : new Error(String(error)));
      }
    });
  }

  /** Runs a command and collects its output; for short queries. */
  async capture(command: string): Promise<{ code: number; stdout: string; stderr: string }> {
    let stdout = '';
    let stderr = '';
    const code = await this.exec(command, { onStdout: (c) => (stdout += c), onStderr: (c) => (stderr += c) });
    return { code, stdout, stderr };
  }

  /** Copies a local file or directory tree to `remote` (created; parents must exist). */
  async upload(local: string, remote: string): Promise<void> {
    const sftp = await this.guarded<SFTPWrapper>('open SFTP', (resolve, reject) => this.client.sftp((error, s) => (error ? reject(error) : resolve(s))));
    try {
      await this.guarded<void>(`upload ${local} to ${remote}`, (resolve, reject) => void uploadTree(sftp, local, remote).then(resolve, reject));
    } finally {
      sftp.end();
    }
  }

  /**
   * Copies the guest's regular file `remote` to `local` (created 0600), refusing one
   * larger than `maxBytes`: what the guest hands over is bounded like any download.
   */
  async download(remote: string, local: string, maxBytes: number): Promise<void> {
    const sftp = await this.guarded<SFTPWrapper>('open SFTP', (resolve, reject) => this.client.sftp((error, s) => (error ? reject(error) : resolve(s))));
    try {
      await this.guarded<void>(`copy ${remote} from the guest`, (resolve, reject) => {
        sftp.lstat(remote, (error, attributes) => {
          if (error) return reject(error);
          if (!attributes.isFile()) return reject(new GuestError(`${this.target.label}: ${remote} is not a regular file in the guest`));
          if (attributes.size > maxBytes) return reject(new GuestError(`${this.target.label}: ${remote} in the guest is ${attributes.size} bytes, more than the ${maxBytes} allowed`));
          let received = 0;
          const source = sftp.createReadStream(remote);
          const sink = createWriteStream(local, { mode: 0o600, flags: 'wx' });
          source.on('data', (chunk: Buffer) => {
            received += chunk.length;
            if (received > maxBytes) source.destroy(new GuestError(`${this.target.label}: ${remote} in the guest grew past ${maxBytes} bytes while it was copied`));
          });
          source.once('error', (failure: Error) => {
            sink.destroy();
            reject(failure);
          });
          sink.once('error', reject);
          sink.once('finish', () => resolve());
          source.pipe(sink);
        });
      });
    } finally {
      sftp.end();
    }
  }

  close(): void {
    this.client.end();
  }
}

async function uploadTree(sftp: SFTPWrapper, local: string, remote: string): Promise<void> {
  for await (const entry of uploadEntries(local)) {
    const target = posix.join(remote, ...entry.names);
    if (entry.kind === 'directory') {
      await new Promise<void>((resolve, reject) => sftp.mkdir(target, { mode: entry.mode }, (error) => (error ? reject(error) : resolve())));
      continue;
    }
    await new Promise<void>((resolve, reject) => {
      const source = createReadStream(entry.local);
      const sink = sftp.createWriteStream(target, { mode: entry.mode });
      sink.once('close', () => resolve());
      sink.once('error', reject);
      source.once('error', reject);
      source.pipe(sink);
    });
  }
}

export interface WaitOptions {
  deadline: number;
  /** Tells the caller, about once a second, that it is still waiting. */
  onAttempt?: (elapsedMs: number, lastError: string) => void;
  /** Stop early (e.g. QEMU died): return a reason to give up with. */
  giveUp?: () => Promise<string | undefined>;
}

/**
 * Polls until SSH accepts the machine's key and runs `true`. QEMU's user-mode network
 * accepts TCP on the forwarded port before the guest listens, so only a full login
 * counts as ready. Given several targets, each attempt tries them in order and the
 * first that logs in wins (session.target says which).
 */
export async function waitForSsh(target: SshTarget | readonly SshTarget[], options: WaitOptions): Promise<SshSession> {
  const targets = Array.isArray(target) ? target : [target as SshTarget];
  const started = Date.now();
  let lastError = 'no attempt yet';
  while (Date.now() < options.deadline) {
    const reason = await options.giveUp?.();
    if (reason !== undefined) throw new GuestError(reason);
    const attemptStart = Date.now();
    for (const candidate of targets) {
      try {
        const remaining = Math.max(1000, options.deadline - Date.now());
        const session = await SshSession.connect(candidate, Math.min(remaining, 15_000));
        const code = await session.exec('true');
        if (code === 0) return session;
        session.close();
        lastError = `login worked but "true" exited ${code}`;
      } catch (error) {
        // Early in boot sshd may accept and then drop us; only a wrong key (or a bug) ends the
        // wait. With several targets, a host key one of them does not expect may be another's.
        if (!(error instanceof GuestError) || (error instanceof SshHostKeyError && targets.length === 1) || error instanceof SshKeyError) throw error;
        lastError = error.cause instanceof Error ? error.cause.message : error.message;
      }
    }
    options.onAttempt?.(Date.now() - started, lastError);
    await sleep(Math.max(0, 500 - (Date.now() - attemptStart)));
  }
  throw new SshTimeout(lastError);
}

export class SshTimeout extends Error {
  constructor(readonly lastError: string) {
    super(`SSH not ready: ${lastError}`);
  }
}

/** The hop program's stdio as the connection's socket; it ends with the connection, and what it says on failure becomes the error. */
function hopStream(client: Client, argv: readonly string[]): Duplex {
  const [command, ...args] = argv;
  const child = spawn(command ?? 'ssh', args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let said = '';
  child.stderr.on('data', (chunk: Buffer) => (said = (said + chunk.toString('utf8')).slice(-2000)));
  const stream = Duplex.from({ readable: child.stdout, writable: child.stdin });
  const fail = (why: string) => stream.destroy(new Error(`the SSH hop (${argv.join(' ')}) ${why}${said.trim() === '' ? '' : `: ${said.trim()}`}`));
  child.once('error', (error) => fail(`could not start (${error.message})`));
  child.once('exit', (code) => {
    if (code !== 0) fail(`exited with ${code ?? 'a signal'}`);
  });
  client.once('close', () => child.kill());
  return stream;
}

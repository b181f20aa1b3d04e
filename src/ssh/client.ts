/**
 * The communicator: commands and uploads over SSH (ssh2), and the readiness wait.
 *
 * Contract: `connectSsh` resolves only after key authentication succeeded against the
 * pinned host key; every method on a closed session rejects. `exec` resolves with the
 * remote exit code (never rejects for a non-zero one); output is streamed to the
 * callbacks as it arrives.
 */
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, type SFTPWrapper } from 'ssh2';
import { GuestError } from '../errors.js';

export interface SshTarget {
  host: string;
  port: number;
  user: string;
  privateKey: string;
  /** Raw public key blob the guest must present. */
  hostKey: Buffer;
}

export interface ExecCallbacks {
  onStdout?: (chunk: string) => void;
  onStderr?: (chunk: string) => void;
  signal?: AbortSignal;
}

export class SshSession {
  private constructor(private readonly client: Client) {}

  static connect(target: SshTarget, timeoutMs = 10_000): Promise<SshSession> {
    return new Promise((resolve, reject) => {
      const client = new Client();
      let hostKeyMismatch = false;
      let settled = false;
      client
        .once('ready', () => {
          settled = true;
          resolve(new SshSession(client));
        })
        // ssh2 may emit several errors for one failure, and later ones after ready
        // (a dropped connection); the pending exec or upload reports those.
        .on('error', (error) => {
          if (settled) return;
          settled = true;
          client.end();
          reject(hostKeyMismatch ? new GuestError('the guest presented an unexpected SSH host key', { cause: error }) : error);
        })
        .connect({
          host: target.host,
          port: target.port,
          username: target.user,
          privateKey: target.privateKey,
          readyTimeout: timeoutMs,
          hostVerifier: (key: Buffer) => {
            const ok = key.equals(target.hostKey);
            if (!ok) hostKeyMismatch = true;
            return ok;
          },
        });
    });
  }

  exec(command: string, callbacks: ExecCallbacks = {}): Promise<number> {
    return new Promise((resolve, reject) => {
      this.client.exec(command, (error, stream) => {
        if (error) return reject(error);
        const abort = (): void => {
          stream.signal('TERM');
          stream.close();
        };
        callbacks.signal?.addEventListener('abort', abort, { once: true });
        stream.on('data', (chunk: Buffer) => callbacks.onStdout?.(chunk.toString('utf8')));
        stream.stderr.on('data', (chunk: Buffer) => callbacks.onStderr?.(chunk.toString('utf8')));
        stream.once('close', (code: number | null, signalName?: string) => {
          callbacks.signal?.removeEventListener('abort', abort);
          if (callbacks.signal?.aborted === true) return reject(callbacks.signal.reason);
          // A command killed by a signal has no exit code; report it like a shell would.
          resolve(code ?? (signalName === undefined ? 255 : 128 + 15));
        });
      });
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
    const sftp = await new Promise<SFTPWrapper>((resolve, reject) => this.client.sftp((error, s) => (error ? reject(error) : resolve(s))));
    try {
      await uploadTree(sftp, local, remote);
    } finally {
      sftp.end();
    }
  }

  close(): void {
    this.client.end();
  }
}

async function uploadTree(sftp: SFTPWrapper, local: string, remote: string): Promise<void> {
  const info = await stat(local);
  if (info.isDirectory()) {
    await new Promise<void>((resolve, reject) => sftp.mkdir(remote, { mode: info.mode & 0o777 }, (error) => (error ? reject(error) : resolve())));
    for (const entry of await readdir(local)) {
      await uploadTree(sftp, join(local, entry), posix.join(remote, entry));
    }
    return;
  }
  await new Promise<void>((resolve, reject) => {
    const source = createReadStream(local);
    const sink = sftp.createWriteStream(remote, { mode: info.mode & 0o777 });
    sink.once('close', () => resolve());
    sink.once('error', reject);
    source.once('error', reject);
    source.pipe(sink);
  });
}

export interface WaitOptions {
  deadline: number;
  signal?: AbortSignal;
  /** Tells the caller, about once a second, that it is still waiting. */
  onAttempt?: (elapsedMs: number, lastError: string) => void;
  /** Stop early (e.g. QEMU died): return a reason to give up with. */
  giveUp?: () => Promise<string | undefined>;
}

/**
 * Polls until SSH accepts the machine's key and runs `true`. QEMU's user-mode network
 * accepts TCP on the forwarded port before the guest listens, so only a full login
 * counts as ready.
 */
export async function waitForSsh(target: SshTarget, options: WaitOptions): Promise<SshSession> {
  const started = Date.now();
  let lastError = 'no attempt yet';
  while (Date.now() < options.deadline) {
    options.signal?.throwIfAborted();
    const reason = await options.giveUp?.();
    if (reason !== undefined) throw new GuestError(reason);
    const attemptStart = Date.now();
    try {
      const remaining = Math.max(1000, options.deadline - Date.now());
      const session = await SshSession.connect(target, Math.min(remaining, 15_000));
      const code = await session.exec('true');
      if (code === 0) return session;
      session.close();
      lastError = `login worked but "true" exited ${code}`;
    } catch (error) {
      if (error instanceof GuestError) throw error;
      lastError = error instanceof Error ? error.message : String(error);
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

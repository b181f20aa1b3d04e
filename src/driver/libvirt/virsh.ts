/**
 * libvirt through virsh, the tool libvirt ships and keeps stable: every call is one argv
 * with the host's URI (`-c`), so a remote host (qemu+ssh://) is reached by libvirt's own
 * SSH transport exactly as the user's `virsh -c URI` would. What virsh says on failure
 * becomes a UserError that names the host and says what to check, never a stack trace.
 */
import { ExternalCommandError, UserError } from '../../errors.js';
import { run } from '../../exec.js';

export interface LibvirtHost {
  uri: string;
  pool: string;
}

export interface VirshOptions {
  /** What the call is for, in the error message ("define domain vmfile-web-…"). */
  purpose: string;
  timeoutMs?: number;
  input?: string;
}

export async function virsh(host: LibvirtHost, args: readonly string[], options: VirshOptions): Promise<string> {
  try {
    const result = await run('virsh', ['-q', '-c', host.uri, ...args], {
      purpose: options.purpose,
      timeout: options.timeoutMs ?? 120_000,
      ...(options.input === undefined ? {} : { input: options.input }),
    });
    return result.stdout;
  } catch (error) {
    throw virshFailure(host, options.purpose, error);
  }
}

/** What virsh says of a domain, a volume, a snapshot or a network that is not there (for virshMaybe). */
export const NO_DOMAIN = /domain not found|failed to get domain|no domain with matching/i;
export const NO_VOLUME = /storage vol not found|no storage vol with matching/i;
export const NO_SNAPSHOT = /snapshot not found|no domain snapshot with matching/i;
export const NO_NETWORK = /network not found|no network with matching/i;

/** Like virsh(), but a failure whose message matches `expected` is an answer (undefined), not an error. */
export async function virshMaybe(host: LibvirtHost, args: readonly string[], expected: RegExp, options: VirshOptions): Promise<string | undefined> {
  try {
    return await virsh(host, args, options);
  } catch (error) {
    if (error instanceof LibvirtError && expected.test(error.said)) return undefined;
    throw error;
  }
}

/** A failure libvirt reported, with its own words kept for callers that expect some. */
export class LibvirtError extends UserError {
  constructor(
    message: string,
    readonly said: string,
    options: { hint?: string; cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The host did not answer at all (down, SSH failing, libvirtd not running there). */
export class LibvirtUnreachableError extends LibvirtError {}

export function virshFailure(host: LibvirtHost, purpose: string, error: unknown): Error {
  if (!(error instanceof ExternalCommandError)) return error instanceof Error ? error : new Error(String(error));
  if (error.stderr === '' && /not installed/.test(error.message)) return error;
  const said = error.stderr
    .split('\n')
    .map((line) => line.replace(/^error:\s*/, '').trim())
    .filter((line) => line !== '')
    .join('; ');
  const where = `libvirt host ${host.uri}`;
  const check = `check it with: virsh -c ${host.uri} list`;
  if (/permission denied(?! \(publickey)|authentication failed|access denied|not authorized|operation not permitted/i.test(said)) {
    return new LibvirtError(`${where} refused vmfile (${purpose}): ${said}`, said, {
      hint: `the user in the URI must be allowed to manage libvirt there (root, or the libvirt group); ${check}`,
      cause: error,
    });
  }
  if (/failed to connect|cannot recv data|connection refused|could not resolve|no route to host|host key verification failed|permission denied \(publickey|end of file while reading data|connection reset|timed out/i.test(said)) {
    return new LibvirtUnreachableError(`${where} cannot be reached (${purpose}): ${said}`, said, {
      hint: `check that the host is up, that libvirtd runs there, and that SSH to it works without a password; ${check}`,
      cause: error,
    });
  }
  if (/storage pool not found|no storage pool with matching name/i.test(said)) {
    return new LibvirtError(`${where} has no storage pool "${host.pool}" (${purpose})`, said, {
      hint: `create it there (virsh pool-define-as ${host.pool} dir --target DIR; virsh pool-build ${host.pool}; virsh pool-start ${host.pool}), or name another with provider.pool in the Vmfile`,
      cause: error,
    });
  }
  if (/pool '[^']*' is not active|storage pool .* is not active/i.test(said)) {
    return new LibvirtError(`${where}: storage pool "${host.pool}" is not active (${purpose})`, said, { hint: `start it there: virsh -c ${host.uri} pool-start ${host.pool}`, cause: error });
  }
  return new LibvirtError(`${where}: ${purpose} failed: ${said || error.message}`, said, { hint: check, cause: error });
}

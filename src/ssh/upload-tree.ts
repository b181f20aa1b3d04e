/**
 * What an upload copies from this host (SshSession.upload): a file, or a directory and
 * everything under it. Symlinks are followed, as the user expects a link in a project to
 * stand for what it points to; files and directories go with their permission bits.
 * Anything else (a FIFO, a socket, a device) and a directory that contains itself
 * through a link are refused before a byte is sent: reading a FIFO would wait for ever.
 * The upload and the provisioning layer key (provision/runner.ts stepHash) both walk
 * this list, so the key covers exactly what the guest receives.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError } from '../errors.js';

export interface UploadEntry {
  /** Where it is read from, here. */
  local: string;
  /** The names from the uploaded root down to it; [] for the root itself. */
  names: string[];
  kind: 'file' | 'directory';
  /** Permission bits (0o777) the copy is made with. */
  mode: number;
}

/** Parents before their children, names in code-unit order. */
export async function* uploadEntries(root: string): AsyncGenerator<UploadEntry> {
  yield* walk(root, [], []);
}

async function* walk(local: string, names: string[], ancestors: readonly string[]): AsyncGenerator<UploadEntry> {
  const info = await stat(local);
  const mode = info.mode & 0o777;
  if (info.isFile()) {
    yield { local, names, kind: 'file', mode };
    return;
  }
  if (!info.isDirectory()) {
    throw new ConfigError(`${local} is neither a file nor a directory: an upload copies only files and directories`, { hint: 'remove it from the uploaded tree, or upload another path' });
  }
  const identity = `${info.dev}:${info.ino}`;
  if (ancestors.includes(identity)) {
    throw new ConfigError(`${local} leads back to a directory above it through a symlink (a loop): it cannot be uploaded`, { hint: 'remove the link, or upload another path' });
  }
  yield { local, names, kind: 'directory', mode };
  for (const name of (await readdir(local)).sort()) yield* walk(join(local, name), [...names, name], [...ancestors, identity]);
}

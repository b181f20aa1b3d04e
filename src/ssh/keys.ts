/**
 * Per-machine SSH keys, made with the host's real ssh-keygen: a client key pair
 * vmfile logs in with, and the guest's ed25519 host key, generated here and handed to
 * cloud-init so that the host can pin it (StrictHostKeyChecking) from the first
 * connection. Private keys are 0600 in a 0700 directory.
 */
import { chmod, readFile, rm } from 'node:fs/promises';
import { run } from '../exec.js';

export async function generateKeyPair(privateKeyPath: string, comment: string): Promise<void> {
  await rm(privateKeyPath, { force: true });
  await rm(`${privateKeyPath}.pub`, { force: true });
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', privateKeyPath], {
    purpose: 'generate an SSH key',
  });
  await chmod(privateKeyPath, 0o600);
}

/** The base64 key blob of an OpenSSH public key line ("ssh-ed25519 AAAA... comment"). */
export function publicKeyBlob(line: string): Buffer {
  const field = line.trim().split(/\s+/)[1];
  if (field === undefined) throw new Error(`not an OpenSSH public key: ${line.slice(0, 40)}`);
  return Buffer.from(field, 'base64');
}

export async function readPublicKey(path: string): Promise<string> {
  return (await readFile(path, 'utf8')).trim();
}

/** known_hosts line pinning the guest host key under the machine's alias. */
export function knownHostsLine(alias: string, publicKey: string): string {
  const [type, blob] = publicKey.trim().split(/\s+/);
  if (type === undefined || blob === undefined || type === '') throw new Error(`not an OpenSSH public key: ${publicKey.slice(0, 40)}`);
  return `${alias} ${type} ${blob}\n`;
}

export function hostKeyAlias(machine: string): string {
  return `vmfile-${machine}`;
}

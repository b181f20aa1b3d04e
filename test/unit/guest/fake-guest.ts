/**
 * A guest's sshd at the SSH seam: an ssh2 server on 127.0.0.1 with a given host key,
 * letting in the public keys it is told to (as cloud-init's authorized_keys would), and
 * answering each command through a handler. It records every command, with the key that
 * logged in, so tests can say what ran in "the guest" and as whom. A take-over (the
 * first login's script) can change which keys it lets in, as the real one does.
 */
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { Server, utils } from 'ssh2';
import { publicKeyBlob } from '../../../src/ssh/keys.js';

export interface GuestCommand {
  command: string;
  stdin: string;
  /** Which of the allowed keys logged in (its index in the order they were allowed). */
  login: string;
}

export type GuestHandler = (command: GuestCommand) => { code: number; stdout?: string } | undefined;

export class FakeGuest {
  readonly commands: GuestCommand[] = [];
  /** Public key blobs (base64) allowed to log in, by a name for the tests. */
  readonly allowed = new Map<string, string>();
  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  /** Starts it with the host key in `hostPrivateKeyFile`; `handler` answers commands (default: exit 0, no output). */
  static async start(hostPrivateKeyFile: string, handler: GuestHandler = () => undefined): Promise<FakeGuest> {
    const hostKey = await readFile(hostPrivateKeyFile, 'utf8');
    let guest: FakeGuest | undefined;
    const server = new Server({ hostKeys: [hostKey] }, (client) => {
      let login = '';
      client.on('authentication', (context) => {
        if (context.method !== 'publickey') return context.reject(['publickey']);
        const name = [...(guest?.allowed ?? new Map<string, string>())].find(([, blob]) => blob === context.key.data.toString('base64'))?.[0];
        if (name === undefined) return context.reject(['publickey']);
        if (context.signature !== undefined && context.blob !== undefined) {
          const key = utils.parseKey(`${context.key.algo} ${context.key.data.toString('base64')}`);
          if (key instanceof Error || !key.verify(context.blob, context.signature, context.hashAlgo)) return context.reject(['publickey']);
        }
        login = name;
        return context.accept();
      });
      client.on('ready', () => {
        client.on('session', (accept) => {
          const session = accept();
          session.on('exec', (acceptExec, _reject, info) => {
            const stream = acceptExec();
            let stdin = '';
            stream.on('data', (chunk: Buffer) => void (stdin += chunk.toString()));
            const answer = () => {
              const command = { command: info.command, stdin, login };
              guest?.commands.push(command);
              const result = handler(command) ?? { code: 0 };
              if (result.stdout !== undefined) stream.write(result.stdout);
              stream.exit(result.code);
              stream.end();
            };
            // A command with standard input is answered once the client closes it.
            let answered = false;
            stream.on('end', () => {
              if (!answered) answer();
              answered = true;
            });
            setTimeout(() => {
              if (!answered && stdin === '') {
                answered = true;
                answer();
              }
            }, 20);
          });
        });
      });
      client.on('error', () => {});
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    guest = new FakeGuest(server, (server.address() as AddressInfo).port);
    return guest;
  }

  /** Lets the public key in `publicKeyFile` log in, under `name`. */
  async allow(name: string, publicKeyFile: string): Promise<void> {
    this.allowed.set(name, publicKeyBlob(await readFile(publicKeyFile, 'utf8')).toString('base64'));
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

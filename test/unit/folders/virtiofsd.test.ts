/**
 * A live folder of the project must not show the guest .vmfile/ (every machine's private
 * login key), even read-only. virtiofsd is started in a mount namespace of its own with
 * an empty read-only tmpfs over the project's .vmfile/; the test starts the real
 * virtiofsd, connects to its socket as QEMU would (so it sets up its sandbox), and reads
 * what the sandboxed process sees through /proc/PID/root. Booting a guest to list the
 * mount is the e2e test's part (test/e2e/multi.test.ts).
 */
import { readdir, readFile, writeFile, mkdir } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, test } from 'vitest';
import { ConfigError } from '../../../src/errors.js';
import { planFolders } from '../../../src/folders/plan.js';
import { checkProjectExposure, startVirtiofsd, VIRTIOFSD, virtiofsdArgv } from '../../../src/folders/sync.js';
import { machinePaths } from '../../../src/store/layout.js';
import { socketPath } from '../../../src/store/socket.js';
import { tempDir } from '../temp-dir.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

/** A project with a machine whose directory holds a private key. */
async function project(): Promise<{ dir: string; paths: ReturnType<typeof machinePaths> }> {
  const dir = await tempDir();
  const paths = machinePaths(dir, 'web');
  await mkdir(paths.dir, { recursive: true });
  await writeFile(paths.privateKey, 'PRIVATE KEY\n', { mode: 0o600 });
  await writeFile(join(dir, 'Vmfile.ts'), 'export default {};\n');
  return { dir, paths };
}

/** The pids of the processes whose command line names `socket`. */
async function processesWith(socket: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.split('\0').some((arg) => arg.includes(socket))) pids.push(Number(entry));
  }
  return pids;
}

describe('virtiofsd and the project state', () => {
  test('what virtiofsd serves of a read-only share of the project has an empty .vmfile/, and is read-only', async () => {
    const { dir, paths } = await project();
    const folders = planFolders([{ host: dir, guest: '/project', readonly: true, exclude: [] }], { virtiofsd: true, projectDir: dir });

    const [share] = await startVirtiofsd((tag) => socketPath(paths.dir, `${tag}.sock`), folders);
    if (share === undefined) throw new Error('a share expected');
    // QEMU's side of the socket: virtiofsd sets up its sandbox once a client connects.
    const client = net.connect(share.socket);
    cleanups.push(() => client.destroy());
    let seen: string[] | undefined;
    let rootMount: string | undefined;
    for (let i = 0; i < 100 && seen === undefined; i++) {
      for (const pid of await processesWith(share.socket)) {
        cleanups.push(() => {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // gone already
          }
        });
        const top = await readdir(`/proc/${pid}/root`).catch(() => [] as string[]);
        if (!top.includes('Vmfile.ts')) continue;
        seen = await readdir(`/proc/${pid}/root/.vmfile`);
        rootMount = (await readFile(`/proc/${pid}/mountinfo`, 'utf8')).split('\n').find((line) => line.split(' ')[4] === '/');
      }
      if (seen === undefined) await sleep(50);
    }

    expect(seen).toEqual([]);
    // A readonly folder is read-only at the host, not only by the guest's mount option.
    expect(rootMount?.split(' ')[5]?.split(',')).toContain('ro');
    // The host's own view is untouched.
    expect(await readFile(paths.privateKey, 'utf8')).toBe('PRIVATE KEY\n');
  });

  const served = (source: string) => [VIRTIOFSD, '--socket-path=/run/fs0.sock', '-o', `source=${source}`, '-o', 'cache=auto'];
  const inView = (mode: string, hidden: string) => ['vmfile-virtiofsd', expect.any(String), '/run/fs0.sock.view', mode, hidden, ...served('/run/fs0.sock.view')];

  test.each([
    ['the project', '/p', false, false, inView('rw', '/run/fs0.sock.view/.vmfile')],
    ['a parent of it', '/', false, false, inView('rw', '/run/fs0.sock.view/p/.vmfile')],
    ['the project, read-only', '/p', true, false, inView('ro', '/run/fs0.sock.view/.vmfile')],
    ['a subdirectory, read-only', '/p/src', true, false, inView('ro', '')],
    ['the project, with shareProjectState', '/p', false, true, served('/p')],
    ['a subdirectory', '/p/src', false, false, served('/p/src')],
    ['another directory', '/q', false, false, served('/q')],
  ])('a virtiofs share of %s', (_what, host, readonly, share, expected) => {
    const [folder] = planFolders([{ host, guest: '/g', readonly, exclude: [], ...(share ? { shareProjectState: true } : {}) }], { virtiofsd: true, projectDir: '/p' });
    const argv = virtiofsdArgv({ host, readonly, hidden: folder?.hidden ?? [] }, '/run/fs0.sock');
    if (argv[0] === VIRTIOFSD) expect(argv).toEqual(expected);
    else {
      expect(argv.slice(0, 7)).toEqual(['unshare', '--mount', '--propagation', 'private', '--', '/bin/sh', '-euc']);
      expect(argv.slice(8)).toEqual(expected);
      expect(argv[9]).toBe(host);
    }
  });

  test('a 9p share of the project, even read-only, is refused: QEMU serves it and cannot hide .vmfile/', async () => {
    const specs = [{ host: '/p', guest: '/project', readonly: true, exclude: [], type: '9p' as const }];
    const error = await Promise.resolve(checkProjectExposure('web', specs, planFolders(specs, { virtiofsd: false }), { dir: '/p', vmfilePath: '/p/Vmfile.ts' })).catch((reason: unknown) => reason);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toContain('/p/.vmfile');
    expect((error as ConfigError).hint).toMatch(/rsync.*virtiofs.*shareProjectState/);
  });
});

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmod, mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { ConfigError } from '../../../src/errors.js';
import { ensureSocketDir, unixSocketListens } from '../../../src/store/socket.js';
import { tempDir } from '../temp-dir.js';

describe('ensureSocketDir', () => {
  test('makes the runtime directory with mode 0700 and accepts it again', async () => {
    const env = { XDG_RUNTIME_DIR: await tempDir() };
    const socket = join(env.XDG_RUNTIME_DIR, 'vmfile', 'abc-qmp.sock');
    await ensureSocketDir(socket, env);
    await ensureSocketDir(socket, env);
    const { stat } = await import('node:fs/promises');
    expect((await stat(join(env.XDG_RUNTIME_DIR, 'vmfile'))).mode & 0o777).toBe(0o700);
  });

  test.each([
    ['open to others', async (dir: string) => {
      await mkdir(dir);
      await chmod(dir, 0o777);
    }, /can be entered by others \(mode 777\)/],
    ['a symbolic link', async (dir: string) => symlink('/tmp', dir), /is a symbolic link/],
    ['a file', async (dir: string) => writeFile(dir, ''), /is not a directory/],
  ])('a runtime directory that is %s is refused', async (_what, make, message) => {
    const env = { XDG_RUNTIME_DIR: await tempDir() };
    const dir = join(env.XDG_RUNTIME_DIR, 'vmfile');
    await make(dir);
    const error = await ensureSocketDir(join(dir, 'x.sock'), env).catch((reason: unknown) => reason);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toMatch(message);
  });

  test('a socket in a machine directory is not its business', async () => {
    await expect(ensureSocketDir('/nonexistent/machine/qmp.sock', { XDG_RUNTIME_DIR: '/also-nonexistent' })).resolves.toBeUndefined();
  });
});

describe('unixSocketListens', () => {
  // Python can bind without listening: the state QEMU met when it connected too early.
  const PY = `import socket, sys
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); print("bound", flush=True); sys.stdin.readline()
s.listen(1); print("listening", flush=True); sys.stdin.readline()`;

  test('a socket file that is bound but not listening is not ready; once listening it is', async () => {
    const socket = join(await tempDir(), 'fs.sock');
    const child = spawn('python3', ['-c', PY, socket], { stdio: ['pipe', 'pipe', 'inherit'] });
    const lines = child.stdout.setEncoding('utf8');
    const next = async () => String((await once(lines, 'data'))[0]).trim();
    try {
      expect(await next()).toBe('bound');
      expect(await unixSocketListens(socket)).toBe(false);
      child.stdin.write('\n');
      expect(await next()).toBe('listening');
      expect(await unixSocketListens(socket)).toBe(true);
      expect(await unixSocketListens(`${socket}.other`)).toBe(false);
    } finally {
      child.kill();
    }
  });
});

import { execFileSync, spawnSync } from 'node:child_process';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { ConfigError } from '../../../src/errors.js';
import type { ProvisionRecord } from '../../../src/store/provision-record.js';
import { changedSteps, checkStepFiles, fileInstallCommand, runSteps, scriptCommand, shouldRun, stepHash, StepFailedError, type ProvisionMode } from '../../../src/provision/runner.js';
import type { SshSession } from '../../../src/ssh/client.js';
import { quiet } from '../quiet-reporter.js';
import type { ProvisionStep, RunPolicy } from '../../../src/vmfile/steps.js';
import { tempDir } from '../temp-dir.js';

function shellStep(id: string, run: RunPolicy): ProvisionStep {
  return { kind: 'shell', id, name: id, run, inline: 'true', env: {}, privileged: true };
}

const NOTHING_RAN: ProvisionRecord = { steps: {} };
const STEP_RAN: ProvisionRecord = { steps: { setup: { hash: 'abc', at: '2026-01-01T00:00:00.000Z' } } };

const BOOT: ProvisionMode = { kind: 'boot' };
const ALL: ProvisionMode = { kind: 'all' };
const ONLY_SETUP: ProvisionMode = { kind: 'only', names: ['setup'] };
const ONLY_OTHER: ProvisionMode = { kind: 'only', names: ['other'] };

describe('shouldRun', () => {
  test.each<[string, ProvisionMode, RunPolicy, ProvisionRecord, boolean]>([
    ['boot', BOOT, 'once', NOTHING_RAN, true],
    ['boot', BOOT, 'once', STEP_RAN, false],
    ['boot', BOOT, 'always', NOTHING_RAN, true],
    ['boot', BOOT, 'always', STEP_RAN, true],
    ['boot', BOOT, 'never', NOTHING_RAN, false],
    ['boot', BOOT, 'never', STEP_RAN, false],
    ['all', ALL, 'once', NOTHING_RAN, true],
    ['all', ALL, 'once', STEP_RAN, true],
    ['all', ALL, 'always', NOTHING_RAN, true],
    ['all', ALL, 'always', STEP_RAN, true],
    ['all', ALL, 'never', NOTHING_RAN, false],
    ['all', ALL, 'never', STEP_RAN, false],
    ['only setup', ONLY_SETUP, 'once', STEP_RAN, true],
    ['only setup', ONLY_SETUP, 'always', NOTHING_RAN, true],
    ['only setup', ONLY_SETUP, 'never', NOTHING_RAN, true],
    ['only other', ONLY_OTHER, 'once', NOTHING_RAN, false],
    ['only other', ONLY_OTHER, 'always', STEP_RAN, false],
    ['only other', ONLY_OTHER, 'never', NOTHING_RAN, false],
  ])('mode %s, run %s, record %j -> %s', (_label, mode, run, record, expected) => {
    expect(shouldRun(shellStep('setup', run), mode, record)).toBe(expected);
  });

  test('a record of another step does not count for this one', () => {
    expect(shouldRun(shellStep('other', 'once'), BOOT, STEP_RAN)).toBe(true);
  });
});

/**
 * A directory holding a stand-in `sudo` that drops its options and runs the rest as
 * the current user, so privileged commands can run for real in a test.
 */
async function fakeSudoPath(): Promise<string> {
  const bin = await tempDir('vmfile-bin-');
  await writeFile(join(bin, 'sudo'), '#!/bin/sh\nwhile [ "${1#-}" != "$1" ]; do shift; done\nexec "$@"\n');
  await chmod(join(bin, 'sudo'), 0o755);
  return `${bin}:${process.env['PATH'] ?? '/usr/bin:/bin'}`;
}

function sh(command: string, cwd: string, path?: string): { status: number; output: string } {
  try {
    const output = execFileSync('sh', ['-c', command], { cwd, encoding: 'utf8', env: { ...process.env, ...(path === undefined ? {} : { PATH: path }) }, stdio: 'pipe' });
    return { status: 0, output };
  } catch (error) {
    const failure = error as { status?: number; stdout?: string };
    return { status: failure.status ?? -1, output: failure.stdout ?? '' };
  }
}

const HOSTILE_ARGS = ['$(touch pwned)', 'two words', "it's", '`touch pwned2`', ''];

describe('scriptCommand', () => {
  test.each([
    ['a #! script runs by its own path', '#!/bin/sh\necho hi\n', "env /tmp/s.local a"],
    ['a script without #! runs through bash', 'echo hi\n', "env bash /tmp/s.local a"],
  ])('%s', (_label, body, invocation) => {
    expect(scriptCommand('/tmp/s.local', body, ['a'], {}, false)).toBe(
      `chmod 0755 /tmp/s.local && { ${invocation}; status=$?; rm -f /tmp/s.local; exit $status; }`,
    );
  });

  test('privileged steps go through sudo -n -H with the environment after it', () => {
    expect(scriptCommand('/tmp/s.local', 'true', [], { LANG: 'C.UTF-8' }, true)).toBe(
      'chmod 0755 /tmp/s.local && { sudo -n -H env LANG=C.UTF-8 bash /tmp/s.local; status=$?; rm -f /tmp/s.local; exit $status; }',
    );
  });

  test('arguments and environment values are single-quoted', () => {
    const command = scriptCommand('/tmp/s.local', 'true', ['$(touch /tmp/pwned)', 'a b'], { GREETING: 'hello $USER' }, false);
    expect(command).toContain(" 'GREETING=hello $USER' ");
    expect(command).toContain(" '$(touch /tmp/pwned)' 'a b';");
  });

  test('runs the script with exactly its arguments and environment, then removes it', async () => {
    const dir = await tempDir();
    const script = join(dir, 'step.local');
    const body = 'printf "%s\\n" "$#" "$GREETING" "$@" > "$OUT"\nexit 3\n';
    await writeFile(script, body);

    const result = sh(scriptCommand(script, body, HOSTILE_ARGS, { GREETING: 'hi $(touch pwned3)', OUT: join(dir, 'out') }, false), dir);

    expect(result.status).toBe(3);
    expect(await readFile(join(dir, 'out'), 'utf8')).toBe(['5', 'hi $(touch pwned3)', ...HOSTILE_ARGS].join('\n') + '\n');
    await expect(stat(script)).rejects.toThrow(/ENOENT/);
    await expect(stat(join(dir, 'pwned'))).rejects.toThrow(/ENOENT/);
    await expect(stat(join(dir, 'pwned2'))).rejects.toThrow(/ENOENT/);
    await expect(stat(join(dir, 'pwned3'))).rejects.toThrow(/ENOENT/);
  });

  test('a #! script runs under its own interpreter (through sudo when privileged)', async () => {
    const dir = await tempDir();
    const script = join(dir, 'step.local');
    const body = `#!/bin/sh\necho "interpreter=$0 args=$*" > ${join(dir, 'out')}\n`;
    await writeFile(script, body);

    const result = sh(scriptCommand(script, body, ['x'], {}, true), dir, await fakeSudoPath());

    expect(result.status).toBe(0);
    expect(await readFile(join(dir, 'out'), 'utf8')).toBe(`interpreter=${script} args=x\n`);
  });
});

describe('fileInstallCommand', () => {
  test('outside the home directory the file stays root-owned', () => {
    expect(fileInstallCommand('/tmp/vmfile-1', '/etc/app/app.conf', { user: 'vm', home: '/home/vm' })).toBe(
      "sudo -n mkdir -p -- /etc/app && sudo -n cp -rT '--preserve=mode,timestamps' -- /tmp/vmfile-1 /etc/app/app.conf && true; status=$?; rm -rf /tmp/vmfile-1; exit $status",
    );
  });

  test.each([['/home/vm'], ['/home/vm/data'], ['/home/vm/.config/app']])('%s belongs to the user', (destination) => {
    expect(fileInstallCommand('/tmp/vmfile-1', destination, { user: 'vm', home: '/home/vm' })).toContain(` && sudo -n chown -R vm: -- ${destination};`);
  });

  test.each([['/home/vmx/data'], ['/home'], ['/root/vm']])('%s is not in the home of user vm', (destination) => {
    expect(fileInstallCommand('/tmp/vmfile-1', destination, { user: 'vm', home: '/home/vm' })).not.toContain('chown');
  });

  test('a destination with spaces and quotes is quoted', () => {
    expect(fileInstallCommand('/tmp/vmfile-1', "/srv/my app/it's.conf", { user: 'vm', home: '/home/vm' })).toContain(
      `sudo -n mkdir -p -- '/srv/my app' && sudo -n cp -rT '--preserve=mode,timestamps' -- /tmp/vmfile-1 '/srv/my app/it'\\''s.conf'`,
    );
  });

  test('installs a tree at a new destination, creating parents, and removes the upload', async () => {
    const dir = await tempDir();
    const scratch = join(dir, 'upload');
    await mkdir(join(scratch, 'sub'), { recursive: true });
    await writeFile(join(scratch, 'sub', 'a.txt'), 'A');
    const destination = join(dir, "new parent's dir", 'tree');

    const result = sh(fileInstallCommand(scratch, destination, { user: 'nobody-here', home: '/home/nobody-here' }), dir, await fakeSudoPath());

    expect(result.status).toBe(0);
    expect(await readFile(join(destination, 'sub', 'a.txt'), 'utf8')).toBe('A');
    await expect(stat(scratch)).rejects.toThrow(/ENOENT/);
  });

  test('a failed copy keeps its exit status and still removes the upload', async () => {
    const dir = await tempDir();
    const scratch = join(dir, 'missing-upload');

    const result = sh(fileInstallCommand(scratch, join(dir, 'out'), { user: 'nobody-here', home: '/home/nobody-here' }), dir, await fakeSudoPath());

    expect(result.status).not.toBe(0);
    await expect(stat(join(dir, 'out'))).rejects.toThrow(/ENOENT/);
  });
});

describe('checkStepFiles', () => {
  const steps: ProvisionStep[] = [
    { kind: 'shell', id: 'inline', name: 'inline', run: 'once', inline: 'true', env: {}, privileged: true },
    { kind: 'script', id: 'setup', name: 'setup', run: 'once', script: 'scripts/setup.sh', args: [], env: {}, privileged: true },
    { kind: 'file', id: 'conf', name: 'conf', run: 'once', source: 'conf/app.conf', destination: '/etc/app.conf' },
  ];

  async function checkError(projectDir: string): Promise<ConfigError> {
    const error: unknown = await checkStepFiles(steps, projectDir, 'web').then(
      () => undefined,
      (reason: unknown) => reason,
    );
    if (!(error instanceof ConfigError)) throw new Error(`expected a ConfigError, got ${String(error)}`);
    return error;
  }

  test('passes when every script and source exists', async () => {
    const dir = await tempDir();
    await mkdir(join(dir, 'scripts'));
    await mkdir(join(dir, 'conf'));
    await writeFile(join(dir, 'scripts', 'setup.sh'), 'true\n');
    await writeFile(join(dir, 'conf', 'app.conf'), '');

    await expect(checkStepFiles(steps, dir, 'web')).resolves.toBeUndefined();
  });

  test('a missing script names the machine, the step, the field and the full path', async () => {
    const dir = await tempDir();

    const error = await checkError(dir);

    expect(error.exitCode).toBe(78);
    expect(error.message).toBe(`machine "web": provisioning step "setup": script ${join(dir, 'scripts', 'setup.sh')} does not exist`);
    expect(error.hint).toBe('paths in the Vmfile are relative to the directory holding it');
  });

  test('a missing file source is reported as file.source', async () => {
    const dir = await tempDir();
    await mkdir(join(dir, 'scripts'));
    await writeFile(join(dir, 'scripts', 'setup.sh'), 'true\n');

    const error = await checkError(dir);

    expect(error.message).toBe(`machine "web": provisioning step "conf": file.source ${join(dir, 'conf', 'app.conf')} does not exist`);
  });
});

describe('changedSteps', () => {
  const steps: ProvisionStep[] = [
    { kind: 'script', id: 'setup', name: 'setup', run: 'once', script: 'setup.sh', args: [], env: {}, privileged: true },
    { kind: 'file', id: 'conf', name: 'conf', run: 'once', source: 'conf', destination: '/etc/app' },
    { kind: 'shell', id: 'each', name: 'each', run: 'always', inline: 'date', env: {}, privileged: true },
    { kind: 'shell', id: 'later', name: 'later', run: 'once', inline: 'true', env: {}, privileged: true },
  ];
  const ranAt = '2026-01-01T00:00:00.000Z';

  async function recorded(dir: string): Promise<ProvisionRecord> {
    const record: ProvisionRecord = { steps: {} };
    // "later" never ran: nothing to compare it with.
    for (const step of steps.slice(0, 3)) record.steps[step.id] = { hash: await stepHash(step, dir), at: ranAt };
    return record;
  }

  test('nothing changed: nothing reported', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'setup.sh'), 'echo one\n');
    await mkdir(join(dir, 'conf', 'sub'), { recursive: true });
    await writeFile(join(dir, 'conf', 'sub', 'a.conf'), 'a=1\n');
    expect(await changedSteps(steps, await recorded(dir), dir)).toEqual([]);
  });

  test("a script's contents, a file deep in an uploaded directory, and the step's own settings each count as a change; always steps never do", async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'setup.sh'), 'echo one\n');
    await mkdir(join(dir, 'conf', 'sub'), { recursive: true });
    await writeFile(join(dir, 'conf', 'sub', 'a.conf'), 'a=1\n');
    const record = await recorded(dir);

    await writeFile(join(dir, 'setup.sh'), 'echo two\n');
    expect((await changedSteps(steps, record, dir)).map(({ step }) => step.id)).toEqual(['setup']);
    await writeFile(join(dir, 'conf', 'sub', 'a.conf'), 'a=2\n');
    expect(await changedSteps(steps, record, dir)).toEqual([{ step: steps[0], ranAt }, { step: steps[1], ranAt }]);

    const withArgs = steps.map((step) => (step.kind === 'script' ? { ...step, args: ['--fast'] } : step));
    await writeFile(join(dir, 'setup.sh'), 'echo one\n');
    await writeFile(join(dir, 'conf', 'sub', 'a.conf'), 'a=1\n');
    expect((await changedSteps(withArgs, record, dir)).map(({ step }) => step.id)).toEqual(['setup']);
  });
});

describe('runSteps around each step', () => {
  /** A session that runs each command here, with a stand-in dpkg-query listing the file `state`. */
  async function localSession(state: string): Promise<SshSession> {
    const path = await fakeSudoPath();
    const bin = path.split(':')[0] ?? '';
    await writeFile(join(bin, 'dpkg-query'), `#!/bin/sh\ncat ${JSON.stringify(state)}\n`, { mode: 0o755 });
    const exec = (command: string, callbacks: { onStdout?: (chunk: string) => void } = {}): Promise<number> => {
      const result = spawnSync('bash', ['-c', command], { encoding: 'utf8', env: { ...process.env, PATH: path } });
      callbacks.onStdout?.(result.stdout);
      return Promise.resolve(result.status ?? 255);
    };
    const capture = async (command: string) => {
      let stdout = '';
      const code = await exec(command, { onStdout: (chunk) => (stdout += chunk) });
      return { code, stdout, stderr: '' };
    };
    return { exec, capture } as unknown as SshSession;
  }

  test('the pinned source is given once before the first step that runs, and each step but a file upload is told what it installed', async () => {
    const dir = await tempDir();
    const state = join(dir, 'dpkg');
    await writeFile(state, 'ii \tlibc6\t2.36-9\tamd64\n');
    const events: string[] = [];
    const shell = (id: string, inline: string): ProvisionStep => ({ kind: 'shell', id, name: id, run: 'once', inline, env: {}, privileged: true });
    const steps: ProvisionStep[] = [
      shell('install', `printf 'ii \\thello\\t2.10-3\\tamd64\\n' >> ${JSON.stringify(state)}`),
      shellStep('nothing', 'always'),
      shell('failing', `printf 'ii \\tjq\\t1.6\\tamd64\\n' >> ${JSON.stringify(state)}; exit 3`),
    ];
    const ran = runSteps(steps, ALL, {
      machine: 'web',
      user: 'vm',
      projectDir: dir,
      session: await localSession(state),
      reporter: quiet,
      recordPath: join(dir, 'provisioned.json'),
      record: { steps: {} },
      beforeSteps: () => Promise.resolve(void events.push('pinned source')),
      onInstalled: (step, changed) => Promise.resolve(void events.push(`${step.name}: ${changed.map((deb) => `${deb.name} ${deb.version}`).join(', ')}`)),
    });
    await expect(ran).rejects.toThrow(StepFailedError);
    // A failed step's installs are not recorded: it is run again, and recorded then.
    expect(events).toEqual(['pinned source', 'install: hello 2.10-3', 'nothing: ']);
  });
});

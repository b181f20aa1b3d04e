/**
 * The core promise, through the built CLI on the real debian-12 box under QEMU:
 * vmup provisions → vmssh reads the result → vmhalt powers off cleanly → vmup boots the
 * same disk (data kept, once steps not re-run) → a SIGKILLed QEMU is seen as halted and
 * recovers → destroy removes the machine and keeps the box. A step's declared outputs
 * are hashed in the guest and recorded in Vmfile.lock.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { machinePaths } from '../../src/store/layout.js';
import { WARM_SHAPE, cli, explain, freePort, listening, makeProject, processesNaming, processRunning } from './cli.js';

const VMFILE = `import { defineVm } from 'vmfile';
export default defineVm({
  box: 'debian-12',
  ${WARM_SHAPE},
  hostname: 'lifecycle',
  provision: [
    { name: 'count', shell: 'echo ran >> /root/once-count && cp /root/once-count /home/vm/once-count && chmod 644 /home/vm/once-count' },
    { name: 'greet', script: 'greet.sh', args: ['it works', '$(touch /tmp/injected)'], env: { WHO: 'vmfile' }, privileged: false },
    { name: 'boots', shell: 'echo boot >> /home/vm/boots', run: 'always', privileged: false },
    { name: 'analysis', shell: 'mkdir -p "/vmfile/results/by host" && echo 1,2 > /vmfile/results/a.csv && hostname > "/vmfile/results/by host/name.csv"', privileged: false, outputs: ['results/**/*.csv'] },
  ],
});
`;
const GREET = `#!/bin/sh
printf '%s|%s|%s\\n' "$WHO" "$1" "$2" > "$HOME/greeting"
`;

/** The first line a server on 127.0.0.1:port sends, retrying until `withinMs` has passed. */
async function banner(port: number, withinMs: number): Promise<string> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const line = await new Promise<string | undefined>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.setTimeout(2000, () => socket.destroy());
      socket.once('data', (data) => {
        resolve(data.toString().split('\n')[0]);
        socket.destroy();
      });
      socket.once('error', () => resolve(undefined));
      socket.once('close', () => resolve(undefined));
    });
    if (line !== undefined) return line;
    if (Date.now() > deadline) throw new Error(`nothing answered on 127.0.0.1:${port} within ${withinMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

describe('machine lifecycle', () => {
  let project: string;
  const run = (bin: Parameters<typeof cli>[0], ...args: string[]) => cli(bin, args, { cwd: project });
  const guest = async (command: string) => {
    const result = await run('vmssh', '-c', command);
    expect(result.code, explain(result)).toBe(0);
    return result.stdout.trim();
  };
  const pid = async () => Number.parseInt(await readFile(join(project, '.vmfile/machines/default/qemu.pid'), 'utf8'), 10);
  const control = () => machinePaths(project, 'default').sshControl;

  beforeAll(async () => {
    project = await makeProject(VMFILE, { 'greet.sh': GREET, '.gitignore': 'ignored.txt\n', 'ignored.txt': 'not copied', 'kept.txt': 'copied' });
  });

  afterAll(async () => {
    await run('vmfile', 'destroy', '-f');
    await rm(project, { recursive: true, force: true });
  });

  it('vmup creates, starts (from the warm state) and provisions the machine', async () => {
    // --no-cache: the steps run on this machine whatever the test store's cache holds
    // (provisioning layers are layers.test.ts's subject).
    const result = await run('vmup', '--no-cache');
    expect(result.code, explain(result)).toBe(0);
    expect(result.stderr).toMatch(/Waiting for SSH on 127\.0\.0\.1:\d+: done in/);
    expect(result.stderr).toContain('Provisioning step "count": done');
    expect(await guest('cat /home/vm/once-count')).toBe('ran');
    // Arguments reach the script verbatim: the $(...) was not run by any shell.
    expect(await guest('cat ~/greeting')).toBe('vmfile|it works|$(touch /tmp/injected)');
    expect(await guest('test -e /tmp/injected && echo yes || echo no')).toBe('no');
    expect(await guest('hostname')).toBe('lifecycle');
    // The box's cloud-init configuration works as a whole: no module failed.
    expect(await guest('cloud-init status')).toBe('status: done');
    // Each machine has the host key vmfile generated for it, and no other.
    expect(await guest('ls /etc/ssh | grep ssh_host_ | sort | tr "\\n" " "')).toBe('ssh_host_ed25519_key ssh_host_ed25519_key.pub');
    // The project folder leaves out what .gitignore names.
    expect(await guest('cat /vmfile/kept.txt; echo; test -e /vmfile/ignored.txt && echo copied || echo left out')).toBe('copied\nleft out');
    // The disk was grown to the declared 4GiB (the box is 3GiB).
    expect(Number(await guest("df --output=size -B1M / | tail -1"))).toBeGreaterThan(3500);
    // The step's declared outputs were hashed in the guest and recorded in Vmfile.lock, and vmfile outputs lists them.
    const digests = await guest('cd /vmfile/results && sha256sum a.csv "by host/name.csv" | cut -c1-64');
    const lock = JSON.parse(await readFile(join(project, 'Vmfile.lock'), 'utf8')) as { machines: { default: { outputs?: Record<string, Record<string, string>> } } };
    expect(lock.machines.default.outputs).toEqual({ analysis: { '/vmfile/results/a.csv': digests.split('\n')[0], '/vmfile/results/by host/name.csv': digests.split('\n')[1] } });
    const listed = await run('vmfile', 'outputs', '--json');
    expect(listed.code, explain(listed)).toBe(0);
    expect(JSON.parse(listed.stdout)).toEqual([
      { machine: 'default', step: 'analysis', path: '/vmfile/results/a.csv', sha256: digests.split('\n')[0] },
      { machine: 'default', step: 'analysis', path: '/vmfile/results/by host/name.csv', sha256: digests.split('\n')[1] },
    ]);
  });

  it('vmssh -c returns the command exit code', async () => {
    const result = await run('vmssh', '-c', 'echo out; exit 7');
    expect(result.code, explain(result)).toBe(7);
    expect(result.stdout.trim()).toBe('out');
  });

  it('vmssh commands share one SSH connection per boot: no key exchange after the first', async () => {
    // $SSH_CONNECTION names the client's TCP port: one connection, one port.
    const ports = new Set<string>();
    for (let i = 0; i < 3; i++) ports.add((await guest('echo $SSH_CONNECTION')).split(' ')[1] ?? '');
    expect(ports.size).toBe(1);
    expect(await processesNaming(control(), '[mux]')).toHaveLength(1);
  });

  it('status reports running with the SSH port on 127.0.0.1', async () => {
    const result = await run('vmfile', 'status', '--json');
    expect(result.code, explain(result)).toBe(0);
    const [entry] = JSON.parse(result.stdout) as { status: string; accel: string; ports: { hostIp: string; guest: number }[] }[];
    expect(entry?.status).toBe('running');
    expect(entry?.accel).toMatch(/^(tcg|kvm)$/);
    expect(entry?.ports).toEqual([expect.objectContaining({ hostIp: '127.0.0.1', guest: 22 })]);
  });

  it('ssh-config works with ssh -F and pins the host key', async () => {
    const config = await run('vmfile', 'ssh-config');
    expect(config.code, explain(config)).toBe(0);
    const file = join(project, 'ssh-config');
    await import('node:fs/promises').then((fs) => fs.writeFile(file, config.stdout));
    const { execFileSync } = await import('node:child_process');
    expect(execFileSync('ssh', ['-F', file, 'default', 'cat', '/home/vm/once-count']).toString().trim()).toBe('ran');
    expect(config.stdout).toContain('StrictHostKeyChecking "yes"');
  });

  it('vmup on a running machine says so and changes nothing', async () => {
    const before = await pid();
    const result = await run('vmup');
    expect(result.code, explain(result)).toBe(0);
    expect(result.stderr).toContain('already running');
    expect(await pid()).toBe(before);
  });

  it('vmup on a running machine whose Vmfile changed says what differs; status marks it', async () => {
    await writeFile(join(project, 'Vmfile.ts'), VMFILE.replace("memory: '1GiB'", "memory: '768MiB'"));
    try {
      const result = await run('vmup');
      expect(result.code, explain(result)).toBe(0);
      expect(result.stderr).toContain('machine "default" runs with settings that differ from the Vmfile:\n  - memory 1GiB -> 768MiB\n  vmfile reload applies them');
      const status = await run('vmfile', 'status', '--json');
      expect((JSON.parse(status.stdout) as { drift?: string[] }[])[0]?.drift).toEqual(['memory 1GiB -> 768MiB']);
    } finally {
      await writeFile(join(project, 'Vmfile.ts'), VMFILE);
    }
    const status = await run('vmfile', 'status', '--json');
    expect((JSON.parse(status.stdout) as { drift?: string[] }[])[0]?.drift).toBeUndefined();
  });

  it('upload and download copy files and directories; vmssh passes what follows -- to ssh', async () => {
    const local = await mkdtemp(join(tmpdir(), 'vmfile-copy-'));
    try {
      await mkdir(join(local, 'tree', 'sub'), { recursive: true });
      await writeFile(join(local, 'tree', 'sub', 'a b.txt'), 'spaces survive');
      for (const [command, from, to] of [['upload', join(local, 'tree'), 'uploaded'], ['download', 'uploaded', join(local, 'back')]] as const) {
        const result = await run('vmfile', command, from, to);
        expect(result.code, explain(result)).toBe(0);
      }
      expect(await guest('cat "uploaded/sub/a b.txt"')).toBe('spaces survive');
      expect(await readFile(join(local, 'back', 'sub', 'a b.txt'), 'utf8')).toBe('spaces survive');
      const missing = await run('vmfile', 'download', 'no-such-file', join(local, 'x'));
      expect(missing.code).toBe(1);
      expect(missing.stderr).toContain('machine "default": downloading no-such-file');
      // A local forward given after --: the guest's sshd answers on the forwarded port.
      const port = await freePort();
      const forwarding = run('vmssh', '-c', 'sleep 8', '--', '-L', `${port}:127.0.0.1:22`, '-o', 'ExitOnForwardFailure=yes');
      expect(await banner(port, 7000)).toMatch(/^SSH-2\.0-OpenSSH/);
      expect((await forwarding).code).toBe(0);
      // Its own connection, not the shared one: the forward ends with the command.
      expect(await listening(port)).toBe(false);
    } finally {
      await rm(local, { recursive: true, force: true });
    }
  });

  it('vmfile rsync --watch copies a change into the guest within seconds, honouring .gitignore', async () => {
    let watching: () => void = () => undefined;
    const ready = new Promise<void>((resolve) => (watching = resolve));
    let pid = 0;
    const watcher = cli('vmfile', ['rsync', '--watch'], {
      cwd: project,
      onOutput: (output, child) => {
        pid = child.pid ?? 0;
        if (output.includes('watching 1 folder')) watching();
      },
    });
    // A watcher that ends before it watches fails the test instead of hanging it.
    await Promise.race([ready, watcher.then((result) => Promise.reject(new Error(`rsync --watch ended before watching:\n${explain(result)}`)))]);
    await writeFile(join(project, 'watched.txt'), 'synced on change');
    await writeFile(join(project, 'ignored.txt'), 'changed but ignored');
    let seen = '';
    for (let attempt = 0; attempt < 20 && seen !== 'synced on change'; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      seen = (await run('vmssh', '-c', 'cat /vmfile/watched.txt 2>/dev/null || true')).stdout.trim();
    }
    process.kill(-pid, 'SIGINT');
    const stopped = await watcher;
    expect(seen).toBe('synced on change');
    expect(await guest('test -e /vmfile/ignored.txt && echo copied || echo left out')).toBe('left out');
    expect(stopped.code, explain(stopped)).toBe(130);
  });

  it('global-status lists this machine with its project', async () => {
    const result = await run('vmfile', 'global-status', '--json');
    expect(result.code, explain(result)).toBe(0);
    const entries = JSON.parse(result.stdout) as { project: string; machine: string; status: string }[];
    expect(entries).toContainEqual(expect.objectContaining({ project, machine: 'default', status: 'running' }));
  });

  it('vmhalt powers the guest off cleanly and QEMU exits on its own within 60 s', async () => {
    await guest('echo kept > /home/vm/persist && sync');
    const qemu = await pid();
    const result = await run('vmhalt', '--json');
    expect(result.code, explain(result)).toBe(0);
    expect(result.stderr).toContain('guest powered off');
    expect(JSON.parse(result.stdout)).toEqual([{ machine: 'default', outcome: 'clean', seconds: expect.any(Number) as number }]);
    expect(result.seconds).toBeLessThan(60);
    expect(processRunning(qemu)).toBe(false);
    // The connection master went with the boot it belonged to.
    expect(existsSync(control())).toBe(false);
    expect(await processesNaming(control(), '[mux]')).toEqual([]);
    const status = await run('vmfile', 'status');
    expect(status.stdout).toMatch(/default\s+halted/);
  });

  it('vmhalt on a halted machine says it is not running', async () => {
    const result = await run('vmhalt');
    expect(result.code, explain(result)).toBe(0);
    expect(result.stderr).toContain('is not running');
  });

  it('vmup boots the same disk again: data kept, once steps not re-run (a changed one is named), always steps re-run', async () => {
    await writeFile(join(project, 'greet.sh'), `${GREET}# edited since it ran\n`);
    const result = await run('vmup');
    expect(result.code, explain(result)).toBe(0);
    expect(result.stderr).not.toContain('Provisioning step "count"');
    expect(result.stderr).not.toContain('Provisioning step "greet"');
    expect(result.stderr).toMatch(/machine "default": a once step has changed since it ran:\n  - "greet" \(ran [^)]+\)\n  vmup --provision runs the steps again; vmfile provision --step greet runs only this one/);
    expect(await guest('cat /home/vm/persist')).toBe('kept');
    expect(await guest('cat /home/vm/once-count')).toBe('ran');
    expect(await guest('cat /home/vm/boots')).toBe('boot\nboot');
  });

  it('after QEMU is killed with SIGKILL, status says halted and vmup recovers the disk', async () => {
    await guest('echo survived > /home/vm/before-kill && sync');
    const qemu = await pid();
    process.kill(qemu, 'SIGKILL');
    for (let i = 0; i < 50 && processRunning(qemu); i++) await new Promise((r) => setTimeout(r, 100));
    const status = await run('vmfile', 'status', '--json');
    expect((JSON.parse(status.stdout) as { status: string }[])[0]?.status).toBe('halted');
    const ssh = await run('vmssh', '-c', 'true');
    expect(ssh.code).not.toBe(0);
    expect(ssh.stderr).toContain('machine "default" is halted');
    const result = await run('vmup');
    expect(result.code, explain(result)).toBe(0);
    expect(await guest('cat /home/vm/before-kill')).toBe('survived');
  });

  it("with the guest's sshd stopped, provision and rsync fail with exit 1 naming the machine, not as a vmfile bug", async () => {
    await guest('sudo systemctl stop ssh.socket ssh.service 2>/dev/null; sudo systemctl stop ssh; true');
    for (const command of [['provision'], ['rsync']]) {
      const result = await run('vmfile', ...command);
      expect(result.code, explain(result)).toBe(1);
      expect(result.stderr).toContain('machine "default": cannot log in over SSH');
      expect(result.stderr).toContain("hint: check that the guest's sshd runs");
      expect(result.stderr).not.toContain('internal error');
    }
  });

  it('destroy removes the machine and its disk but keeps the box', async () => {
    const result = await run('vmfile', 'destroy', '-f');
    expect(result.code, explain(result)).toBe(0);
    expect(existsSync(join(project, '.vmfile/machines/default'))).toBe(false);
    const status = await run('vmfile', 'status');
    expect(status.stdout).toMatch(/default\s+not created/);
    const boxes = await run('vmfile', 'box', 'list', '--json');
    expect((JSON.parse(boxes.stdout) as { name: string }[]).map((box) => box.name)).toContain('debian-12');
  });
});

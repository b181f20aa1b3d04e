/**
 * Fault injection through the built CLI: a fault is made at a named point of a real
 * command (SIGKILL of vmfile or of QEMU at each phase of vmup, Ctrl-C during box build
 * and box add, a full disk during snapshot save, two vmups at once), then the next
 * command must recover and lose nothing: box, disk, snapshots and provisioning record.
 * The faults follow each other on one machine, so each next command also recovers from
 * the fault before it. The suite prints a table: fault, outcome.
 *
 * It runs in a box store of its own (the first fault interrupts building the box), and
 * the project sits on a tmpfs of its own, so that its file system can be filled.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WARM_SHAPE, cli, explain, type CliOptions, type CliResult } from './cli.js';

const table: { fault: string; outcome: string }[] = [];

afterAll(() => {
  const width = Math.max(...table.map((row) => row.fault.length), 5);
  const lines = table.map((row) => `${row.fault.padEnd(width)}  ${row.outcome}`);
  process.stdout.write(`\nfault-injection table\n${'fault'.padEnd(width)}  outcome\n${lines.join('\n')}\n\n`);
});

/** Records a row once the test's assertions held; a failed test shows as FAILED in the table. */
async function fault(name: string, body: () => Promise<string>): Promise<void> {
  try {
    table.push({ fault: name, outcome: await body() });
  } catch (error) {
    table.push({ fault: name, outcome: `FAILED: ${(error as Error).message.split('\n')[0]}` });
    throw error;
  }
}

/** Mount points under dir, as process `pid` sees them (mmdebstrap runs in a mount namespace of its own, box/build.ts). */
function mountsUnder(dir: string, pid: number | 'self' = 'self'): string[] {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/mountinfo`, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .map((line) => line.split(' ')[4] ?? '')
    .filter((point) => point === dir || point.startsWith(`${dir}/`));
}

/** The running mmdebstrap processes. */
function mmdebstrapPids(): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('mmdebstrap');
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** Unmounts what is left under dir, deepest first, so that removing it never reaches the host's /dev or /sys. */
function unmountAll(dir: string): void {
  for (const point of mountsUnder(dir).sort((a, b) => b.length - a.length)) execFileSync('umount', ['-l', point]);
}

/** Acts once `condition` holds, polled while the command runs (for cues that are not in its output). */
function whenever(condition: () => boolean, act: (child: ChildProcess) => void): Pick<CliOptions, 'onSpawn'> {
  return {
    onSpawn: (child) => {
      const timer = setInterval(() => {
        if (!condition()) return;
        clearInterval(timer);
        act(child);
      }, 100);
      child.once('close', () => clearInterval(timer));
    },
  };
}

/**
 * Once mmdebstrap has mounted its chroot's file systems in the store's staging, as it sees
 * them in its own mount namespace (its output is shown in throttled samples, so it is no cue).
 */
function whenBuilding(home: string, act: (child: ChildProcess) => void): Pick<CliOptions, 'onSpawn'> {
  return whenever(() => mmdebstrapPids().some((pid) => mountsUnder(join(home, 'tmp'), pid).length > 0), act);
}

async function until(condition: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

function qemuPid(project: string, machine = 'default'): number {
  return Number.parseInt(readFileSync(join(project, '.vmfile/machines', machine, 'qemu.pid'), 'utf8'), 10);
}

/** An onOutput that makes `act` happen once, the first time `when` holds. */
function once(when: (output: string) => boolean, act: (child: ChildProcess) => void): NonNullable<CliOptions['onOutput']> {
  let done = false;
  return (output, child) => {
    if (done || !when(output)) return;
    done = true;
    act(child);
  };
}

describe('faults at each phase, one after another on one machine', () => {
  let home: string;
  let project: string;
  const run = (bin: Parameters<typeof cli>[0], args: string[], extra: Partial<CliOptions> = {}): Promise<CliResult> =>
    cli(bin, args, { cwd: project, env: { VMFILE_HOME: home }, ...extra });
  const ok = async (bin: Parameters<typeof cli>[0], ...args: string[]) => {
    const result = await run(bin, args);
    expect(result.code, explain(result)).toBe(0);
    return result;
  };
  const boxes = async () => (JSON.parse((await ok('vmfile', 'box', 'list', '--json')).stdout) as { name: string }[]).map((box) => box.name);
  const status = async () => (JSON.parse((await ok('vmfile', 'status', '--json')).stdout) as { status: string; starting?: string }[])[0];
  /** What a vmfile killed mid-boot leaves: QEMU running, the boot marked unfinished. Returns QEMU's pid. */
  const unfinishedBoot = async () => {
    const left = await status();
    expect(left?.status).toBe('running');
    expect(left?.starting).toBe('boot');
    return qemuPid(project);
  };
  const staging = async () => (await readdir(join(home, 'tmp')).catch(() => [])) as string[];

  beforeAll(async () => {
    home = await mkdtemp(join(tmpdir(), 'vmfile-faults-home-'));
    project = await mkdtemp(join(tmpdir(), 'vmfile-faults-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4g,mode=0700', 'tmpfs', project]);
    await writeFile(
      join(project, 'Vmfile.ts'),
      `import { defineVm } from 'vmfile';
export default defineVm({
  box: 'debian-12',
  // Two CPUs: a cold boot to SSH takes 19 s here against 26 s with one.
  cpus: 2,
  memory: '512MiB',
  // The faults are in the boot of a machine: it boots, it does not start warm.
  warmStart: false,
  provision: [
    { name: 'marker', shell: 'echo ran >> /root/marker-runs' },
    { name: 'slow', shell: 'echo slow-start; sleep 10; touch /root/slow-done' },
  ],
});
`,
    );
  });

  afterAll(async () => {
    await run('vmfile', ['destroy', '-f']).catch(() => undefined);
    execFileSync('umount', ['-l', project]);
    await rm(project, { recursive: true, force: true });
    unmountAll(home);
    await rm(home, { recursive: true, force: true });
  });

  it('Ctrl-C during box build: mmdebstrap cleans up, nothing is installed or left behind', async () => {
    await fault('Ctrl-C during box build', async () => {
      // As a terminal's Ctrl-C does: SIGINT to vmfile and the programs it runs.
      const result = await run('vmfile', ['box', 'build', 'debian-12'], whenBuilding(home, (child) => process.kill(-(child.pid ?? 0), 'SIGINT')));
      expect(result.code, explain(result)).toBe(130);
      expect(result.stderr).toContain('error: interrupted by SIGINT');
      expect(await boxes()).toEqual([]);
      // mmdebstrap normally unmounts and vmfile removes the staging at once; whatever is
      // left the next command sweeps (checked after "Ctrl-C during box add").
      const left = (await staging()).length;
      const mounts = mountsUnder(home).length;
      return left === 0 && mounts === 0 ? 'exit 130; no box, no staging, no mounts left' : `exit 130; no box; ${left} staging dir and ${mounts} mounts left for the next command`;
    });
  });

  // Each fault below is made by the command that also recovers from the one before it;
  // `faulted` carries that command's result to the next test, which checks it.
  let faulted: CliResult;
  /** The staging directory the SIGKILLed build left. */
  let leftover = '';

  it('SIGKILL of vmfile during the box build of vmup: no mount reaches the host; the next vmup builds beside the leftover, which is swept later', async () => {
    await fault('SIGKILL vmfile, vmup: box build', async () => {
      const killed = await run('vmup', [], whenBuilding(home, (child) => child.kill('SIGKILL')));
      expect(killed.signal, explain(killed)).toBe('SIGKILL');
      expect(await boxes()).toEqual([]);
      const left = await staging();
      expect(left).toHaveLength(1);
      // The chroot's mounts are in mmdebstrap's own namespace: none reach the host's, and they end with it.
      expect(mountsUnder(home)).toEqual([]);
      const mounts = mmdebstrapPids().flatMap((pid) => mountsUnder(home, pid)).length;
      // The next vmup builds the box (its staging sweeps the leftover); it is killed in turn as it creates the machine.
      faulted = await run('vmup', [], { onOutput: once((output) => output.includes('Creating machine from box'), (child) => child.kill('SIGKILL')) });
      expect(faulted.signal, explain(faulted)).toBe('SIGKILL');
      expect(await boxes()).toEqual(['debian-12']);
      // The killed build's mmdebstrap may outlive it for a while, still working in its
      // staging: that one is left to a later command (checked after "Ctrl-C during box add").
      leftover = left[0] ?? '';
      return `killed: no box, ${left.length} staging dir, no host mounts (${mounts} in the orphaned mmdebstrap's namespace); next vmup built the box beside it`;
    });
  });

  it('SIGKILL of vmfile during create: the next vmup creates the machine again', async () => {
    await fault('SIGKILL vmfile, vmup: create', async () => {
      const record = existsSync(join(project, '.vmfile/machines/default/machine.json')) ? 'record written' : 'no record yet';
      const left = (await status())?.status ?? '?';
      expect(['not created', 'halted']).toContain(left);
      faulted = await run('vmup', [], { onOutput: once((output) => output.includes('Waiting for SSH'), (child) => child.kill('SIGKILL')) });
      expect(faulted.signal, explain(faulted)).toBe('SIGKILL');
      expect(faulted.stderr).toContain('Starting QEMU');
      return `killed with ${record} (status ${left}); next vmup created it and started QEMU`;
    });
  });

  it('SIGKILL of vmfile during the SSH wait: QEMU runs on, marked unfinished; the next vmup finishes the boot', async () => {
    await fault('SIGKILL vmfile, vmup: SSH wait', async () => {
      const pid = await unfinishedBoot();
      faulted = await run('vmup', [], { onOutput: once((output) => /finishing it[\s\S]*Waiting for SSH/.test(output), () => process.kill(pid, 'SIGKILL')) });
      expect(faulted.stderr).toContain('its last boot did not finish; finishing it');
      return 'QEMU ran on (status: running, boot not finished); next vmup went on to finish that boot';
    });
  });

  it('SIGKILL of QEMU during the SSH wait: vmup says so; the next vmup boots it again', async () => {
    await fault('SIGKILL QEMU, vmup: SSH wait', async () => {
      expect(faulted.code, explain(faulted)).toBe(1);
      expect(faulted.stderr).toMatch(/machine "default": QEMU \(pid \d+\) exited while booting/);
      expect((await status())?.status).toBe('halted');
      faulted = await run('vmup', [], { onOutput: once((output) => output.includes('slow-start'), (child) => child.kill('SIGKILL')) });
      expect(faulted.stderr).toContain('its first boot did not finish; cloud-init will set it up again');
      expect(faulted.signal, explain(faulted)).toBe('SIGKILL');
      return 'vmup exit 1: "QEMU (pid N) exited while booting"; status halted; next vmup booted it, cloud-init set it up afresh';
    });
  });

  it('SIGKILL of vmfile during provisioning: the next vmup runs only the unfinished steps', async () => {
    await fault('SIGKILL vmfile, vmup: provisioning', async () => {
      const pid = await unfinishedBoot();
      faulted = await run('vmup', [], { onOutput: once((output) => output.includes('slow-start'), () => process.kill(pid, 'SIGKILL')) });
      expect(faulted.stderr).toContain('finishing it');
      expect(faulted.stderr).not.toContain('Provisioning step "marker"');
      expect(faulted.stderr).toContain('Provisioning step "slow"');
      return 'status: running, boot not finished; next vmup finished it: skipped the recorded step, ran the unfinished one';
    });
  });

  it('SIGKILL of QEMU during provisioning: the next vmup boots and runs the step that did not finish', async () => {
    await fault('SIGKILL QEMU, vmup: provisioning', async () => {
      expect(faulted.code, explain(faulted)).toBe(1);
      expect(faulted.stderr).toMatch(/QEMU \(pid \d+\) exited before the machine was ready \(at: provisioned\)/);
      expect((await status())?.status).toBe('halted');
      const next = await ok('vmup');
      expect(next.stderr).not.toContain('Provisioning step "marker"');
      expect(next.stderr).toContain('Provisioning step "slow"');
      const guest = await ok('vmssh', '-c', 'sudo cat /root/marker-runs; sudo test -e /root/slow-done && echo slow-done');
      // The once step ran once in all, and its effect survived two power-offs.
      expect(guest.stdout.trim()).toBe('ran\nslow-done');
      const record = JSON.parse(await readFile(join(project, '.vmfile/machines/default/provisioned.json'), 'utf8')) as { steps: Record<string, unknown> };
      expect(Object.keys(record.steps).sort()).toEqual(['marker', 'slow']);
      return 'vmup exit 1: "QEMU exited before the machine was ready (at: provisioned)"; next vmup booted, ran only "slow"; "marker" ran once in all, its file survived';
    });
  });

  it('a full disk during snapshot save: a clear error, earlier snapshots and the machine intact; with space again it works', async () => {
    await fault('full disk during snapshot save', async () => {
      await ok('vmfile', 'snapshot', 'save', 'before');
      await ok('vmssh', '-c', 'echo after-before | sudo tee /root/after-before');
      const used = Number(execFileSync('df', ['--output=used', '-B1', project]).toString().split('\n')[1]);
      execFileSync('mount', ['-o', `remount,size=${used + 16 * 1024 * 1024}`, project]);
      const full = await run('vmfile', ['snapshot', 'save', 'full']);
      expect(full.code, explain(full)).toBe(1);
      expect(full.stderr).toContain('machine "default": the disk is full');
      // The guest writes to its full disk too: QEMU pauses it until there is room.
      const writer = run('vmssh', ['-c', 'dd if=/dev/urandom of=/tmp/fill bs=1M count=32 conv=fsync 2>/dev/null && echo written']);
      await until(async () => (await status())?.status === 'paused');
      execFileSync('mount', ['-o', 'remount,size=4g', project]);
      const next = await ok('vmup');
      expect(next.stderr).toContain('was paused by QEMU because its disk could not be written');
      expect((await writer).stdout.trim()).toBe('written');
      const list = JSON.parse((await ok('vmfile', 'snapshot', 'list', '--json')).stdout) as { name: string }[];
      expect(list.map((snapshot) => snapshot.name)).toEqual(['before']);
      const after = await ok('vmfile', 'snapshot', 'save', 'after');
      expect(after.stderr).toContain('disk and memory');
      await ok('vmfile', 'snapshot', 'restore', 'before');
      const guest = await ok('vmssh', '-c', 'sudo cat /root/marker-runs; sudo test -e /root/after-before && echo present || echo gone');
      expect(guest.stdout.trim()).toBe('ran\ngone');
      await ok('vmhalt');
      execFileSync('qemu-img', ['check', join(project, '.vmfile/machines/default/overlay.qcow2')]);
      return 'save exit 1: "the disk is full" with sizes; the guest, paused by its own full disk, continued by the next vmup; "before" kept and restored; qemu-img check clean';
    });
  });

  it('Ctrl-C during box add: nothing installed; the next add works and sweeps what was left', async () => {
    await fault('Ctrl-C during box add', async () => {
      const source = join(home, 'boxes', 'debian-12');
      const [version] = await readdir(source);
      const disk = join(source, version ?? '', 'disk.qcow2');
      // box add prints nothing before its copy: the Ctrl-C is sent once the copy is under way.
      const result = await run('vmfile', ['box', 'add', 'copy', disk], interruptWhenStaged(home));
      expect(result.code, explain(result)).toBe(130);
      expect(result.stderr).toContain('error: interrupted by SIGINT');
      expect(await boxes()).toEqual(['debian-12']);
      await ok('vmfile', 'box', 'add', 'copy', disk);
      expect(await boxes()).toEqual(['copy', 'debian-12']);
      // Everything staged by a command that is gone has been swept by now, the killed and interrupted builds' included.
      expect(leftover).not.toBe('');
      expect(await staging()).toEqual([]);
      expect(mountsUnder(home)).toEqual([]);
      return 'exit 130; no box; the next add installed it and swept all leftover staging (the killed build\'s too)';
    });
  });
});

/** Ctrl-C for a command that prints nothing while it works: sent once a staged disk appears in the store. */
function interruptWhenStaged(home: string): Pick<CliOptions, 'onSpawn'> {
  const staged = () => {
    try {
      return readdirSync(join(home, 'tmp')).some((entry) => entry.startsWith('add-copy@') && existsSync(join(home, 'tmp', entry, 'disk.qcow2')));
    } catch {
      return false;
    }
  };
  return whenever(staged, (child) => process.kill(-(child.pid ?? 0), 'SIGINT'));
}

describe('two vmups at once in one two-machine project', () => {
  let project: string;
  beforeAll(async () => {
    project = await mkdtemp(join(tmpdir(), 'vmfile-faults-multi-'));
    await writeFile(
      join(project, 'Vmfile.ts'),
      `import { defineVm } from 'vmfile';
export default defineVm({
  defaults: { box: 'debian-12', ${WARM_SHAPE}, folders: [], provision: [{ name: 'count', shell: 'echo up >> /root/ups' }] },
  machines: { a: {}, b: {} },
});
`,
    );
  });
  afterAll(async () => {
    await cli('vmfile', ['destroy', '-f'], { cwd: project });
    await rm(project, { recursive: true, force: true });
  });

  it('each machine is started by one of them; the other says it is busy; both end up running, provisioned once', async () => {
    await fault('two vmups at once (2 machines)', async () => {
      const [first, second] = await Promise.all([cli('vmup', [], { cwd: project }), cli('vmup', [], { cwd: project })]);
      const results = [first, second] as CliResult[];
      // A machine another vmup is starting is refused as busy (exit 75, EX_TEMPFAIL).
      for (const result of results) expect([0, 75], explain(result)).toContain(result.code);
      const busy = results.flatMap((result) => result.stderr.match(/machine "[ab]" is busy/g) ?? []);
      for (const machine of ['a', 'b']) {
        const ran = await cli('vmssh', [machine, '-c', 'sudo cat /root/ups'], { cwd: project });
        expect(ran.stdout.trim(), explain(ran)).toBe('up');
      }
      const status = JSON.parse((await cli('vmfile', ['status', '--json'], { cwd: project })).stdout) as { status: string; starting?: string }[];
      expect(status.map((entry) => `${entry.status}${entry.starting === undefined ? '' : ' starting'}`)).toEqual(['running', 'running']);
      return `exits ${first?.code}/${second?.code}; ${busy.length} refusal(s) as busy; both running, provisioned once`;
    });
  });
});


/**
 * Snapshots, suspend/resume and reload through the built CLI on the real box:
 * online snapshots bring back memory (a process killed after the save runs again),
 * offline ones act on the disk, suspend stops QEMU and resume continues the same boot.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { writeFile, rm, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WARM_SHAPE, cli, explain, makeProject, processRunning } from './cli.js';

const vmfile = (memory: string) => `import { defineVm } from 'vmfile';
export default defineVm({ box: 'debian-12', ${WARM_SHAPE.replace("'1GiB'", `'${memory}'`)} });
`;

interface SnapshotJson {
  name: string;
  memory: boolean;
}

describe('snapshots, suspend and reload', () => {
  let project: string;
  const run = (bin: Parameters<typeof cli>[0], ...args: string[]) => cli(bin, args, { cwd: project });
  const ok = async (bin: Parameters<typeof cli>[0], ...args: string[]) => {
    const result = await run(bin, ...args);
    expect(result.code, explain(result)).toBe(0);
    return result;
  };
  const guest = async (command: string) => (await ok('vmssh', '-c', command)).stdout.trim();
  const snapshots = async () => JSON.parse((await ok('vmfile', 'snapshot', 'list', '--json')).stdout) as SnapshotJson[];
  const status = async () => (JSON.parse((await ok('vmfile', 'status', '--json')).stdout) as { status: string }[])[0]?.status;
  const qemuPid = async () => Number.parseInt(await readFile(join(project, '.vmfile/machines/default/qemu.pid'), 'utf8'), 10);

  beforeAll(async () => {
    project = await makeProject(vmfile('1GiB'));
    await ok('vmup');
  });
  afterAll(async () => {
    await run('vmfile', 'destroy', '-f');
    await rm(project, { recursive: true, force: true });
  });

  it('online save and restore bring back disk and memory', async () => {
    const marker = await guest('nohup sleep 100000 >/dev/null 2>&1 & echo $!');
    const save = await ok('vmfile', 'snapshot', 'save', 'clean');
    expect(save.stderr).toContain('disk and memory');
    await guest(`echo later > ~/after-save && kill ${marker}`);
    expect(await guest(`ps -p ${marker} >/dev/null && echo alive || echo dead`)).toBe('dead');
    // Long enough that a clock left at the snapshot's time shows.
    await sleep(6000);
    const restore = await ok('vmfile', 'snapshot', 'restore', 'clean');
    expect(await guest('test -e ~/after-save && echo present || echo gone')).toBe('gone');
    expect(await guest(`ps -p ${marker} -o comm=`)).toBe('sleep');
    // The guest clock is set from the host after a restore, by the box's guest agent.
    expect(Math.abs(Number(await guest('date +%s.%N')) - Date.now() / 1000)).toBeLessThan(3);
    expect(restore.stderr + restore.stdout).toMatch(/Setting the guest clock: done in [0-9.]+s \(through the guest agent; SSH answers\)/);
    expect(await snapshots()).toEqual([expect.objectContaining({ name: 'clean', memory: true })]);
  });

  it('snapshot names are checked: invalid, duplicate, unknown', async () => {
    const invalid = await run('vmfile', 'snapshot', 'save', '1st');
    expect(invalid.code).toBe(1);
    expect(invalid.stderr).toContain('snapshot name "1st" is not valid');
    const reserved = await run('vmfile', 'snapshot', 'save', 'vmfile-suspend');
    expect(reserved.stderr).toContain('reserved for vmfile suspend');
    const duplicate = await run('vmfile', 'snapshot', 'save', 'clean');
    expect(duplicate.code).toBe(1);
    expect(duplicate.stderr).toContain('already has a snapshot "clean"');
    const unknown = await run('vmfile', 'snapshot', 'restore', 'nope');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('has no snapshot "nope"');
    expect(unknown.stderr).toContain('its snapshots: clean');
  });

  it('a snapshot while another operation holds the machine is refused, not interleaved', async () => {
    const lock = join(project, '.vmfile/machines/default/lock');
    await writeFile(lock, JSON.stringify({ pid: process.pid, operation: 'up', since: new Date().toISOString() }));
    try {
      const busy = await run('vmfile', 'snapshot', 'save', 'while-busy');
      expect(busy.code, explain(busy)).toBe(75);
      expect(busy.stderr).toContain(`machine "default" is busy: another vmfile (pid ${process.pid}) is running "up"`);
    } finally {
      await rm(lock, { force: true });
    }
    expect((await snapshots()).map((s) => s.name)).not.toContain('while-busy');
  });

  it('push and pop work as a stack; pop --no-delete keeps the snapshot', async () => {
    await ok('vmfile', 'snapshot', 'push');
    await guest('echo pushed > ~/pushed');
    const pop = await ok('vmfile', 'snapshot', 'pop');
    expect(pop.stdout.trim()).toMatch(/^push-/);
    expect(await guest('test -e ~/pushed && echo present || echo gone')).toBe('gone');
    expect((await snapshots()).map((s) => s.name)).toEqual(['clean']);
    await ok('vmfile', 'snapshot', 'push');
    await ok('vmfile', 'snapshot', 'pop', '--no-delete');
    expect((await snapshots()).filter((s) => s.name.startsWith('push-'))).toHaveLength(1);
  });

  it('suspend stops QEMU; vmup resumes the same boot with its processes', async () => {
    const marker = await guest('nohup sleep 200000 >/dev/null 2>&1 & echo $!');
    const uptimeBefore = Number((await guest('cut -d" " -f1 /proc/uptime')));
    const qemu = await qemuPid();
    await ok('vmfile', 'suspend');
    expect(await status()).toBe('suspended');
    expect(processRunning(qemu)).toBe(false);
    const ssh = await run('vmssh', '-c', 'true');
    expect(ssh.code, explain(ssh)).toBe(1);
    expect(ssh.stderr).toContain('machine "default" is suspended');
    expect(ssh.stderr).toContain('vmfile resume');
    const resumed = await ok('vmup');
    expect(resumed.stderr).toContain('Resuming from saved memory');
    const uptimeAfter = Number(await guest('cut -d" " -f1 /proc/uptime'));
    // Uptime continues from where it was; a fresh boot would start near zero.
    expect(uptimeAfter).toBeGreaterThanOrEqual(uptimeBefore);
    expect(await guest(`ps -p ${marker} -o comm=`)).toBe('sleep');
    expect(await status()).toBe('running');
    // The saved memory is dropped after a resume; user snapshots are untouched.
    expect((await snapshots()).map((s) => s.name)).toContain('clean');
  });

  it('resume on a machine that is not suspended says so', async () => {
    const result = await ok('vmfile', 'resume');
    expect(result.stderr).toContain('is running, not suspended');
  });

  it('offline save/restore after vmhalt act on the disk; reload applies changed memory', async () => {
    await ok('vmhalt');
    const save = await ok('vmfile', 'snapshot', 'save', 'offline');
    expect(save.stderr).toContain('disk only');
    expect(await snapshots()).toContainEqual(expect.objectContaining({ name: 'offline', memory: false }));
    // reload boots a halted machine as well (one cold boot here, not two), with the memory the Vmfile says now.
    await writeFile(join(project, 'Vmfile.ts'), vmfile('1536MiB'));
    await ok('vmfile', 'reload');
    const memTotalKiB = Number(await guest("awk '/MemTotal/ {print $2}' /proc/meminfo"));
    expect(memTotalKiB).toBeGreaterThan(1300 * 1024);
    await guest('echo written > ~/after-offline && sync');
    await ok('vmhalt');
    await ok('vmfile', 'snapshot', 'restore', 'offline');
    await ok('vmup');
    expect(await guest('test -e ~/after-offline && echo present || echo gone')).toBe('gone');
  });

  it('destroy removes the snapshots and says how many', async () => {
    const count = (await snapshots()).length;
    const result = await ok('vmfile', 'destroy', '-f');
    expect(result.stderr).toContain(`destroyed with its ${count} snapshots`);
  });
});

/**
 * Faults and bad input through the built CLI: each gives a sentence naming the machine
 * or field and what to do, and loses nothing.
 */
import { existsSync } from 'node:fs';
import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { WARM_SHAPE, cli, explain, makeProject } from './cli.js';

const projects: string[] = [];
async function project(vmfile: string, files: Record<string, string> = {}): Promise<string> {
  const dir = await makeProject(vmfile, files);
  projects.push(dir);
  return dir;
}

afterEach(async () => {
  for (const dir of projects.splice(0)) {
    await cli('vmfile', ['destroy', '-f'], { cwd: dir });
    await rm(dir, { recursive: true, force: true });
  }
});

const vm = (body: string) => `import { defineVm } from 'vmfile';\nexport default defineVm({ box: 'debian-12', ${body} });\n`;

describe('bad input is refused before anything boots', () => {
  it('an unknown box names the box and how to add one', async () => {
    const dir = await project(`import { defineVm } from 'vmfile';\nexport default defineVm({ box: 'no-such-box' });\n`);
    const result = await cli('vmup', [], { cwd: dir });
    expect(result.code, explain(result)).toBe(1);
    expect(result.stderr).toContain('machine "default": unknown box "no-such-box"');
    expect(result.stderr).toContain('vmfile box add no-such-box FILE');
    expect(existsSync(join(dir, '.vmfile/machines/default/overlay.qcow2'))).toBe(false);
  });

  it('an invalid Vmfile lists every problem with its field path, exit 78', async () => {
    const dir = await project(vm(`cpus: 'two', memory: '-1GiB', disk: '1000000TiB', colour: 'red'`));
    const result = await cli('vmup', [], { cwd: dir });
    expect(result.code, explain(result)).toBe(78);
    expect(result.stderr).toContain('cpus: expected a whole number of CPUs');
    expect(result.stderr).toContain('memory: expected a size like "2GiB" or "512MiB", got "-1GiB"');
    expect(result.stderr).toContain('disk: disk "1000000TiB" is out of range');
    expect(result.stderr).toContain('unknown key "colour"');
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it('a Vmfile with a syntax error names the file, exit 78, no stack trace', async () => {
    const dir = await project(`import { defineVm } from 'vmfile';\nexport default defineVm({ box: 'debian-12' ;\n`);
    const result = await cli('vmfile', ['validate'], { cwd: dir });
    expect(result.code, explain(result)).toBe(78);
    expect(result.stderr).toContain(join(dir, 'Vmfile.ts'));
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it('more CPUs or memory than the host has', async () => {
    const dir = await project(vm(`cpus: ${cpus().length + 1}`));
    const tooManyCpus = await cli('vmup', [], { cwd: dir });
    expect(tooManyCpus.code, explain(tooManyCpus)).toBe(78);
    expect(tooManyCpus.stderr).toContain(`machine "default": cpus is ${cpus().length + 1} but this host has ${cpus().length}`);
    const dir2 = await project(vm(`memory: '4TiB'`));
    const tooMuchMemory = await cli('vmup', [], { cwd: dir2 });
    expect(tooMuchMemory.code, explain(tooMuchMemory)).toBe(78);
    expect(tooMuchMemory.stderr).toMatch(/machine "default": memory is 4TiB but this host has/);
  });

  it('missing QEMU programs are named with the Debian package to install', async () => {
    const dir = await project(vm(`cpus: 1`));
    const bin = join(dir, 'bin');
    await mkdir(bin);
    for (const tool of ['ssh-keygen', 'qemu-img']) await symlink(execFileSync('sh', ['-c', `command -v ${tool}`]).toString().trim(), join(bin, tool));
    const noQemu = await cli('vmup', [], { cwd: dir, env: { PATH: bin } });
    expect(noQemu.code, explain(noQemu)).toBe(1);
    expect(noQemu.stderr).toContain('qemu-system-x86_64 is not installed');
    expect(noQemu.stderr).toContain('apt-get install qemu-system-x86');
    await rm(join(bin, 'qemu-img'));
    await symlink(execFileSync('sh', ['-c', 'command -v qemu-system-x86_64']).toString().trim(), join(bin, 'qemu-system-x86_64'));
    const noImg = await cli('vmup', [], { cwd: dir, env: { PATH: bin } });
    expect(noImg.stderr).toContain('qemu-img is not installed');
    expect(noImg.stderr).toContain('apt-get install qemu-utils');
  });

  it('an unknown flag, a flag without its value, an unknown command: usage errors (exit 2), never "internal error"', async () => {
    const dir = await project(vm('cpus: 1'));
    for (const args of [['status', '--bogus'], ['init', '--box'], ['no-such-command'], ['rsync', '--bogus']]) {
      const result = await cli('vmfile', args, { cwd: dir });
      expect(result.code, explain(result)).toBe(2);
      expect(result.stderr).toMatch(/^error: .+\nhint: see --help\n$/);
    }
  });

  it('a missing script file names the step before booting', async () => {
    const dir = await project(vm(`provision: [{ name: 'setup', script: 'missing.sh' }]`));
    const result = await cli('vmup', [], { cwd: dir });
    expect(result.code, explain(result)).toBe(78);
    expect(result.stderr).toContain('provisioning step "setup": script');
    expect(result.stderr).toContain('missing.sh does not exist');
  });
});

describe('faults with a real guest', () => {
  it('SSH never ready within bootTimeout: console tail shown, machine left inspectable, next vmup recovers', async () => {
    const dir = await project(vm(`cpus: 2, warmStart: false, bootTimeout: 3`));
    const result = await cli('vmup', [], { cwd: dir });
    expect(result.code, explain(result)).toBe(1);
    expect(result.stderr).toContain('machine "default": SSH not ready after 3 s');
    expect(result.stderr).toContain('Last console lines:');
    expect(result.stderr).toMatch(/\| .+/);
    expect(result.stderr).toContain('left running for inspection');
    const status = await cli('vmfile', ['status', '--json'], { cwd: dir });
    expect((JSON.parse(status.stdout) as { status: string }[])[0]?.status).toBe('running');
    const halted = await cli('vmhalt', ['--force'], { cwd: dir });
    expect(halted.code, explain(halted)).toBe(0);
    expect(existsSync(join(dir, '.vmfile/machines/default/overlay.qcow2'))).toBe(true);
    // The first boot was cut off, maybe before cloud-init's files reached the disk: the
    // next vmup has cloud-init set the machine up again instead of booting a broken one.
    await writeFile(join(dir, 'Vmfile.ts'), vm('cpus: 2, warmStart: false'));
    const again = await cli('vmup', [], { cwd: dir });
    expect(again.code, explain(again)).toBe(0);
    expect(again.stderr).toContain('its first boot did not finish');
    const check = await cli('vmssh', ['-c', 'test -s /etc/ssh/ssh_host_ed25519_key && echo ok'], { cwd: dir });
    expect(check.stdout.trim()).toBe('ok');
  });

  it('a failing step stops vmup naming the step and its exit code; earlier steps stay recorded', async () => {
    const dir = await project(
      vm(`${WARM_SHAPE}, provision: [
        { name: 'first', shell: 'echo one > /root/first' },
        { name: 'breaks', shell: 'echo about to fail; exit 3' },
        { name: 'after', shell: 'touch /root/after' },
      ]`),
    );
    const result = await cli('vmup', [], { cwd: dir });
    expect(result.code, explain(result)).toBe(1);
    expect(result.stderr).toContain('default/breaks | about to fail');
    expect(result.stderr).toContain('machine "default": provisioning step "breaks" failed with exit code 3');
    expect(result.stderr).toContain('vmfile provision');
    const check = await cli('vmssh', ['-c', 'sudo cat /root/first; sudo test -e /root/after && echo after-ran || echo after-not-run'], { cwd: dir });
    expect(check.stdout.trim()).toBe('one\nafter-not-run');
    // The machine stays up: one step can be re-run on demand.
    const again = await cli('vmfile', ['provision', '--step', 'first'], { cwd: dir });
    expect(again.code, explain(again)).toBe(0);
    expect(again.stderr).toContain('Provisioning step "first": done');
  });
});

/**
 * `disk:` on boxes whose own tools do not grow the root file system, through the built
 * CLI: one Vmfile, two machines booted together (the cheapest way to cover both tables
 * and both file systems under TCG):
 * - `mbr`: the Vagrant libvirt box of test/images/build.sh: MBR, ext4, no cloud-init, no
 *   growpart;
 * - `xfs`: test/images/grow.sh's image: GPT, xfs, cloud-init without growpart.
 * Asserted from inside, as a user would: the root file system is within a few percent of
 * the declared disk. GPT with ext4 and MBR with xfs are the same commands in other pairs,
 * pinned in test/unit/guest/root-disk.test.ts.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { cli, cliOk, explain, makeProject, repoRoot } from './cli.js';

const images = inject('testImages');
const DISK = 5 * 1024 ** 3;

/** grow.sh's image, cached by its own hash and that of the images it is made from. */
function growImage(): string {
  for (const tool of ['mkfs.xfs', 'debugfs', 'python3', 'grub-mkimage']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) throw new Error(`the growth test's image needs ${tool}, which is not installed: run scripts/install.sh (as root) first`);
  }
  const script = join(repoRoot, 'test', 'images', 'grow.sh');
  const hash = createHash('sha256').update(readFileSync(script)).update(basename(images)).digest('hex').slice(0, 16);
  const dir = join(homedir(), '.cache', 'vmfile-test', `grow-${hash}`);
  if (!existsSync(join(dir, 'xfs-gpt.qcow2'))) {
    process.stderr.write(`e2e: building the xfs image into ${dir} (under a minute)\n`);
    execFileSync('bash', [script, images, dir], { stdio: ['ignore', 'inherit', 'inherit'] });
  }
  return join(dir, 'xfs-gpt.qcow2');
}

describe('disk: on boxes without growpart', () => {
  let home = '';
  let project = '';
  const where = () => ({ cwd: project, env: { VMFILE_HOME: home } });
  const run = (bin: Parameters<typeof cli>[0], ...args: string[]) => cli(bin, args, where());
  const ok = (bin: Parameters<typeof cli>[0], ...args: string[]) => cliOk(bin, args, where());
  const on = async (machine: string, command: string) => (await ok('vmssh', machine, '-c', command)).stdout.trim();

  beforeAll(async () => {
    const xfsImage = growImage();
    home = await mkdtemp(join(tmpdir(), 'vmfile-e2e-grow-'));
    project = await makeProject(`import { defineVm } from 'vmfile';
export default defineVm({
  defaults: { cpus: 1, memory: '768MiB', disk: '5GiB', folders: [], warmStart: false },
  machines: { mbr: { box: 'vagrant' }, xfs: { box: 'xfs-gpt' } },
});
`);
    await ok('vmfile', 'box', 'add', 'vagrant', join(images, 'vagrant.box'));
    await ok('vmfile', 'box', 'add', 'xfs-gpt', xfsImage);
  }, 300_000);

  afterAll(async () => {
    await run('vmfile', 'destroy', '-f');
    await rm(project, { recursive: true, force: true });
    await rm(home, { recursive: true, force: true });
  });

  it('vmup grows each root file system to the declared disk, as a phase of the first boot', async () => {
    const up = await ok('vmup');
    for (const machine of ['mbr', 'xfs']) {
      expect(up.stderr, explain(up)).toMatch(new RegExp(`==> ${machine}: Checking that the root file system fills the disk: done in [^\\n]*\\(grew it from 1\\.\\dGiB to `));
    }
    expect(up.stderr).not.toContain('could not grow');
  });

  it.each([
    ['mbr', 'dos', 'ext4'],
    ['xfs', 'gpt', 'xfs'],
  ])('%s: the root file system (%s, %s) is within 5 percent of the disk, seen from inside', async (machine, table, fs) => {
    const [pttype = '', fstype = '', disk = '', size = ''] = (await on(machine, 'lsblk -ndo PTTYPE /dev/vda; findmnt -no FSTYPE /; lsblk -bndo SIZE /dev/vda; df -B1 --output=size / | tail -n 1')).split('\n').map((s) => s.trim());
    expect([pttype, fstype]).toEqual([table, fs]);
    expect(Number(disk)).toBe(DISK);
    expect(Number(size) / DISK).toBeGreaterThan(0.95);
    expect(Number(size)).toBeLessThanOrEqual(DISK);
  });

  it('the tables on disk are what the kernel uses: the GPT whole (backup header at the new end), the MBR entry the new size', async () => {
    expect(await on('xfs', 'sudo sfdisk --verify /dev/vda 2>&1; echo "exit $?"')).toMatch(/No errors detected\.?[\s\S]*exit 0$/);
    const [onDisk = '', kernel = ''] = (await on('mbr', 'sudo dd if=/dev/vda bs=1 skip=458 count=4 2>/dev/null | od -An -tu4; cat /sys/class/block/vda1/size')).split('\n').map((s) => s.trim());
    expect(onDisk).toBe(kernel);
    expect(Number(kernel) * 512).toBeGreaterThan(DISK * 0.99);
  });
});

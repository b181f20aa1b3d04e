/**
 * Once per e2e run: check that the real tools are here (a missing QEMU is a failure,
 * never a skip) and make sure the debian-12 box exists, building it with the CLI into
 * a cache keyed by the recipe's hash so later runs reuse it (with its package store:
 * the locked-rebuild tests export from it).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { TestProject } from 'vitest/node';
import { recipeHash } from '../../src/box/recipes.js';

const repoRoot = resolve(import.meta.dirname, '..', '..');

export default async function setup(project: TestProject): Promise<void> {
  for (const tool of ['qemu-system-x86_64', 'qemu-img', 'mmdebstrap', 'mke2fs', 'ssh', 'ssh-keygen', 'sfdisk', 'mkfs.vfat', 'mcopy', 'grub-mkimage', 'vagrant', 'libvirtd', 'dnsmasq']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) {
      throw new Error(`e2e tests need ${tool}, which is not installed: run scripts/install.sh (as root) first`);
    }
  }
  if (!existsSync(join(repoRoot, 'dist', 'cli', 'main.js'))) throw new Error('e2e tests run the built CLI: run npm run build first');
  // oclif's command manifest, written again from dist/commands: a `tsc` alone (no npm run build) leaves it describing the last build.
  execFileSync(process.execPath, [join(repoRoot, 'scripts', 'oclif-manifest.js')], { stdio: 'ignore' });
  const hash = (await recipeHash('debian-12', join(repoRoot, 'boxes'))).slice(0, 16);
  // -p: the box was built with its packages kept (the package store); -p2: with no write count in its superblocks (box/root-image.ts).
  const home = process.env['VMFILE_TEST_HOME'] ?? join(homedir(), '.cache', 'vmfile-test', `${hash}-p2`);
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const list = execFileSync(process.execPath, [join(repoRoot, 'bin', 'vmfile.js'), 'box', 'list', '--json'], { env: { ...process.env, VMFILE_HOME: home } });
  const boxes = JSON.parse(list.toString()) as { name: string }[];
  if (!boxes.some((box) => box.name === 'debian-12')) {
    process.stderr.write(`e2e: building the debian-12 box into ${home} (about a minute)\n`);
    execFileSync(process.execPath, [join(repoRoot, 'bin', 'vmfile.js'), 'box', 'build', 'debian-12'], {
      env: { ...process.env, VMFILE_HOME: home },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
  }
  project.provide('vmfileHome', home);
  project.provide('testImages', testImages());
}

/**
 * The images that boot themselves (a GPT cloud image, a Vagrant libvirt box), built by
 * test/images/build.sh from Debian's packages into a cache keyed by the script's hash.
 */
function testImages(): string {
  const script = join(repoRoot, 'test', 'images', 'build.sh');
  const hash = createHash('sha256').update(readFileSync(script)).digest('hex').slice(0, 16);
  const dir = join(homedir(), '.cache', 'vmfile-test', `images-${hash}`);
  if (!existsSync(join(dir, 'cloud.qcow2')) || !existsSync(join(dir, 'vagrant.box'))) {
    process.stderr.write(`e2e: building the test images into ${dir} (a few minutes)\n`);
    execFileSync('bash', [script, dir], { stdio: ['ignore', 'inherit', 'inherit'] });
  }
  return dir;
}

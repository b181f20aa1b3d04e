/**
 * A box's manifest: every installed Debian package as "name version", sorted, read from
 * a dpkg database (a built root file system, or the status file copied out of a disk).
 * Two boxes with the same manifest were made from the same packages.
 */
import { run } from '../exec.js';

export async function packagesIn(admindir: string): Promise<string[]> {
  const { stdout } = await run('dpkg-query', [`--admindir=${admindir}`, '-W', '-f', '${Package} ${Version}\n'], {
    purpose: 'list the packages of the box',
  });
  return stdout
    .split('\n')
    .filter((line) => line.trim() !== '')
    .sort();
}

/**
 * Extended attributes in a box image, in one order whatever the build host. mke2fs -d
 * stores a file's attributes in the order the host lists them, and hosts differ: ext4,
 * tmpfs and xfs list them in the order they were set, btrfs by a hash of the name. Only a
 * few files have more than one (systemd's /var/log/journal has an access and a default
 * ACL), so after mke2fs those are rewritten with debugfs, sorted by name: read raw,
 * removed, then set again in order. Attribute names debugfs could not be given safely
 * (anything but letters, digits, ".", "_" and "-") leave their file as it is.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { run } from '../exec.js';
import { debugfsQuote, editImage, fakeTimeEnv } from './debugfs.js';

const SAFE_NAME = /^[A-Za-z0-9._-]+$/;

/**
 * Parses the output of debugfs running `ea_list <N>` requests from a file: each request
 * is echoed as `debugfs: ea_list <N>`, followed by `Extended attributes:` and one
 * `  NAME (LENGTH)...` line per attribute. Pure, tested with a table.
 */
export function parseAttributeLists(text: string): Map<number, string[]> {
  const lists = new Map<number, string[]>();
  let inode: number | undefined;
  for (const line of text.split('\n')) {
    const request = /^debugfs: ea_list <(\d+)>$/.exec(line);
    if (request !== null) {
      inode = Number(request[1]);
      continue;
    }
    const attribute = /^ {2}(\S+) \((\d+)\)/.exec(line);
    if (inode === undefined || attribute?.[1] === undefined) continue;
    lists.set(inode, [...(lists.get(inode) ?? []), attribute[1]]);
  }
  return lists;
}

/** The inodes whose attributes are out of name order, with their names; those with a name debugfs cannot take are left out. */
export function unsortedAttributes(lists: ReadonlyMap<number, readonly string[]>): Map<number, string[]> {
  const unsorted = new Map<number, string[]>();
  for (const [inode, names] of lists) {
    if (names.length < 2 || !names.every((name) => SAFE_NAME.test(name))) continue;
    const sorted = [...names].sort();
    if (sorted.some((name, index) => name !== names[index])) unsorted.set(inode, sorted);
  }
  return unsorted;
}

/** Rewrites the attributes of each of `inodes` that has them out of order, sorted by name. Returns how many files it changed. */
export async function sortImageAttributes(raw: string, inodes: readonly number[], epoch: number): Promise<number> {
  const env = fakeTimeEnv(epoch);
  const { stdout } = await run('debugfs', ['-f', '-', raw], { purpose: `list the extended attributes in ${raw}`, input: `${inodes.map((inode) => `ea_list <${inode}>`).join('\n')}\n`, env });
  const unsorted = unsortedAttributes(parseAttributeLists(stdout));
  if (unsorted.size === 0) return 0;
  const values = await mkdtemp(join(dirname(raw), '.attributes-'));
  try {
    const file = (inode: number, index: number) => debugfsQuote(join(values, `${inode}-${index}`));
    const entries = [...unsorted];
    await run('debugfs', ['-f', '-', raw], {
      purpose: `read extended attributes in ${raw}`,
      input: `${entries.flatMap(([inode, names]) => names.map((name, index) => `ea_get -r -f ${file(inode, index)} <${inode}> ${name}`)).join('\n')}\n`,
      env,
    });
    await editImage(
      raw,
      entries.flatMap(([inode, names]) => [`ea_rm <${inode}> ${names.join(' ')}`, ...names.map((name, index) => `ea_set -r -f ${file(inode, index)} <${inode}> ${name}`)]),
      { E2FSPROGS_FAKE_TIME: String(epoch) },
    );
  } finally {
    await rm(values, { recursive: true, force: true });
  }
  return unsorted.size;
}

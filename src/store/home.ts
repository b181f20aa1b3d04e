/**
 * vmfile's home (~/.vmfile or $VMFILE_HOME) holds what machines of every project start
 * from: box disks, warm states' memory, staged imports. Anyone who can write there can
 * swap them, and so run code in every new machine, or in vmfile through a crafted box.
 * So the home, and its boxes/, warm/ and tmp/, must be the user's own and not writable
 * by group or others; each is made 0700 by whatever creates it. Checked once per command
 * where the home is resolved (cli/command.ts): a stat per directory.
 */
import { statSync } from 'node:fs';
import { ConfigError } from '../errors.js';
import { boxesDir, stagingDir, warmStatesDir } from './layout.js';

/** `home` when it and its shared subdirectories are safe to use; a missing one is fine (it will be made private). */
export function checkedHome(home: string): string {
  for (const dir of [home, boxesDir(home), warmStatesDir(home), stagingDir(home)]) checkPrivate(dir);
  return home;
}

function checkPrivate(dir: string): void {
  const info = statSync(dir, { throwIfNoEntry: false });
  if (info === undefined) return;
  const where = `vmfile's home: ${dir}`;
  const uid = process.getuid?.();
  if (!info.isDirectory()) throw new ConfigError(`${where} is not a directory`, { hint: 'move it away; vmfile makes the directory itself' });
  if (uid !== undefined && info.uid !== uid) {
    throw new ConfigError(`${where} is owned by uid ${info.uid}, not by you (uid ${uid}): its owner could change the boxes and saved memory machines start from`, {
      hint: `use a home of your own (unset VMFILE_HOME for ~/.vmfile, or point it at a directory you own), or take it over: chown -R ${uid} ${dir}`,
    });
  }
  if ((info.mode & 0o022) !== 0) {
    throw new ConfigError(`${where} is writable by others (mode ${(info.mode & 0o777).toString(8)}): they could change the boxes and saved memory machines start from`, {
      hint: `chmod go-w ${dir} (vmfile makes its directories 0700)`,
    });
  }
}

/**
 * What an rsync folder leaves out: always vmfile's own state (.vmfile/ at any depth);
 * the folder's `exclude` patterns; and, with `gitignore`, what git ignores.
 *
 * In a git work tree git itself decides: `git ls-files --others --ignored
 * --exclude-standard --directory` lists exactly the untracked paths its rules ignore
 * (.gitignore at every depth, .git/info/exclude, the global excludes file), an ignored
 * directory as one entry. Each becomes an anchored exclude, passed NUL-separated so that
 * any file name works. A tracked file stays synced even where a pattern matches it, as
 * in git. Outside a work tree (or without git) rsync reads the .gitignore files itself
 * (a per-directory merge filter), which follows git's rules for the usual patterns.
 * The .git directory is left out too. Excluded paths are never deleted in the guest.
 */
import { writeFile } from 'node:fs/promises';
import { haveCommand, run } from '../exec.js';
import { PROJECT_STATE_DIR } from '../store/layout.js';
import type { PlannedFolder } from './plan.js';

/** rsync arguments for the folder; `listFile` is a private scratch path for git's list. */
export async function rsyncFilterArgs(folder: PlannedFolder, listFile: string): Promise<string[]> {
  const args = ['--exclude', `${PROJECT_STATE_DIR}/`];
  if (folder.gitignore === true) {
    const ignored = await gitIgnored(folder.host);
    if (ignored === undefined) {
      args.push('--filter', ':- .gitignore');
    } else {
      await writeFile(listFile, ignored.map((path) => `${anchored(path)}\0`).join(''), { mode: 0o600 });
      args.push('--from0', '--exclude-from', listFile);
    }
    args.push('--exclude', '/.git');
  }
  for (const pattern of folder.exclude ?? []) args.push('--exclude', pattern);
  return args;
}

/** Untracked paths git ignores under `dir`, relative to it (directories end in "/"); undefined outside a work tree. */
async function gitIgnored(dir: string): Promise<string[] | undefined> {
  if (!(await haveCommand('git'))) return undefined;
  // The repository's own config must not run anything here (core.fsmonitor is a command).
  const git = ['-c', 'core.fsmonitor=false', '-C', dir];
  const inside = await run('git', [...git, 'rev-parse', '--is-inside-work-tree'], { allowExitCodes: [128], purpose: `check whether ${dir} is a git work tree` });
  if (inside.exitCode !== 0 || inside.stdout.trim() !== 'true') return undefined;
  const listed = await run('git', [...git, 'ls-files', '-z', '--others', '--ignored', '--exclude-standard', '--directory'], { purpose: `list what git ignores in ${dir}` });
  return listed.stdout.split('\0').filter((path) => path !== '');
}

/** A path relative to the folder as an rsync pattern that matches exactly it: anchored, wildcards escaped. */
export function anchored(path: string): string {
  return `/${path.replace(/[\\*?[]/g, (char) => `\\${char}`)}`;
}

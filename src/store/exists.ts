import { access } from 'node:fs/promises';

/** Whether anything exists at `path` (a missing parent counts as missing). */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

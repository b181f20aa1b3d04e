/** The `vmfile box` commands: build, add, list, remove. */
import { addBox as addBoxFromFile } from '../box/import.js';
import { addBoxFromUrl, type NetworkSettings } from '../box/remote.js';
import type { InstalledBox } from '../box/store.js';
import type { Reporter } from '../ui/reporter.js';

export { buildBox } from '../box/build.js';
export { listBoxes, removeBox } from '../box/store.js';

export interface AddBoxOptions {
  home: string;
  reporter: Reporter;
  name: string;
  /** A local file, or an http(s) URL of a box file or a Vagrant catalog. */
  source: string;
  checksum?: string;
  version?: string;
  network?: NetworkSettings;
}

/** `vmfile box add NAME FILE|URL`: a URL is downloaded (a catalog resolved first), a file imported. */
export async function addBox(options: AddBoxOptions): Promise<InstalledBox> {
  const { source, network, ...common } = options;
  if (/^https?:\/\//i.test(source)) return addBoxFromUrl({ ...common, url: source, ...(network === undefined ? {} : { network }) });
  return addBoxFromFile({ ...common, file: source });
}

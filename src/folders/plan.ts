/**
 * Synced folders: which mechanism each folder uses, decided by a pure function.
 *
 * - virtiofs: live and two-way, the best where the host has virtiofsd (QEMU 7.2 ships
 *   it; it needs root) and the guest kernel has virtio-fs (Debian's cloud kernel does).
 *   QEMU cannot snapshot a machine with a vhost-user-fs device, so a machine with a
 *   virtiofs folder has disk-only snapshots and no suspend.
 * - 9p: live and two-way through QEMU alone; needs 9p in the guest kernel (Debian's
 *   generic kernel has it, the cloud kernel in the debian-12 box does not).
 * - rsync: one-way copy over SSH at every vmup and on `vmfile rsync`; works everywhere.
 *
 * The implicit default folder (the project at /vmfile) is rsync, so a default machine
 * keeps every snapshot feature; a folder the Vmfile declares without a type gets the
 * best live mechanism available.
 */
import { join } from 'node:path';
import { PROJECT_STATE_DIR } from '../store/layout.js';
import type { FolderSpec } from '../vmfile/schema.js';

export type FolderType = 'virtiofs' | '9p' | 'rsync';

export interface PlannedFolder {
  host: string;
  guest: string;
  readonly: boolean;
  type: FolderType;
  /** Mount tag the guest sees for live folders. */
  tag: string;
  /** rsync only: patterns left out, and whether what git ignores is left out too. */
  exclude?: string[] | undefined;
  gitignore?: boolean | undefined;
  /**
   * Live folders: what the guest must not see if the folder holds it, the project's
   * .vmfile/ (every machine's private login key); none when the folder says
   * shareProjectState. virtiofs serves it empty (sync.ts), a 9p folder holding it is refused.
   */
  hidden?: string[] | undefined;
}

/** `projectDir`: the project whose .vmfile/ the live folders must not show. */
export function planFolders(folders: readonly FolderSpec[], host: { virtiofsd: boolean; projectDir?: string }): PlannedFolder[] {
  return folders.map((folder, index) => {
    const type = folder.type ?? (host.virtiofsd ? 'virtiofs' : 'rsync');
    const hides = type !== 'rsync' && host.projectDir !== undefined && folder.shareProjectState !== true;
    return {
      host: folder.host,
      guest: folder.guest,
      readonly: folder.readonly,
      type,
      tag: `vmfile${index}`,
      ...(folder.exclude.length === 0 ? {} : { exclude: folder.exclude }),
      ...(folder.gitignore === true ? { gitignore: true } : {}),
      ...(hides && host.projectDir !== undefined ? { hidden: [join(host.projectDir, PROJECT_STATE_DIR)] } : {}),
    };
  });
}

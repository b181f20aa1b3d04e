/**
 * `config.vm.synced_folder` calls, with Vagrant's own default folder (the project at
 * /vagrant, unless disabled): a folder is keyed by its guest path, and a later call for
 * the same path replaces an earlier one, as in Vagrant. Types: rsync stays rsync; the
 * live ones (virtualbox, nfs, smb, vmware, virtiofs, 9p) become virtiofs (9p stays 9p).
 * A folder without a type is rsync: Vagrant's default is the provider's (live for
 * VirtualBox), and vmfile's default folder is rsync too, which keeps snapshots,
 * suspend and warm starts; the comment says how to make it live. Pure.
 */
import { forbiddenGuestPath } from '../vmfile/schema.js';
import { asHash, showValue, type RecordedCall, type RubyValue } from './record.js';
import { showCall, type Report } from './report.js';
import { array, entry, object, value, type Entry } from './source.js';

export interface ConvertedFolder {
  /** Host path as the Vmfile says it (relative to the Vmfile). */
  host: string;
  guest: string;
}

const LIVE = new Set(['virtualbox', 'nfs', 'smb', 'vmware', 'parallels', 'virtiofs', 'hyperv']);
const KNOWN = new Set(['type', 'disabled', 'rsync__exclude', 'id']);

interface Declared {
  call?: RecordedCall;
  host: string;
  guest: string;
  options: Record<string, RubyValue>;
}

/** The folders, and where each host path went (for ansible_local's provisioning_path). */
export function convertFolders(calls: readonly RecordedCall[], report: Report, hostPath: (path: string) => string): { entries: Entry[]; folders: ConvertedFolder[] } {
  const byGuest = new Map<string, Declared>([['/vagrant', { host: '.', guest: '/vagrant', options: {} }]]);
  const broken: Entry[] = [];
  for (const call of calls) {
    const [host, guest] = call.args;
    const options = asHash(call.args[2]) ?? {};
    if (typeof host !== 'string' || typeof guest !== 'string') {
      broken.push(report.drop(call, `${showCall(call, 'config')}: expected a host and a guest path`));
      continue;
    }
    byGuest.set(guest.replace(/(.)\/+$/, '$1'), { call, host, guest, options });
  }
  const entries: Entry[] = [];
  const folders: ConvertedFolder[] = [];
  for (const folder of byGuest.values()) {
    if (folder.options['disabled'] === true) continue;
    const comments: string[] = [];
    const drop = (what: string): void => {
      comments.push(...report.drop(folder.call, what).comments);
    };
    if (!folder.guest.startsWith('/') || forbiddenGuestPath(folder.guest) !== undefined) {
      entries.push(report.drop(folder.call, `folder ${folder.host} -> ${folder.guest}: ${forbiddenGuestPath(folder.guest) ?? 'the guest path must be absolute'}`));
      continue;
    }
    const spec: Entry[] = [entry('host', value(hostPath(folder.host))), entry('guest', value(folder.guest))];
    const type = folder.options['type'];
    if (type === undefined || type === null) {
      spec.push(entry('type', value('rsync')));
      comments.push(...report.change(folder.call, `${folder.guest} is copied with rsync at vmup and by vmfile rsync (Vagrant's default type depends on the provider, live for VirtualBox); type: 'virtiofs' makes it live`).comments);
    } else if (type === 'rsync') {
      spec.push(entry('type', value('rsync')));
    } else if (type === '9p') {
      spec.push(entry('type', value('9p')));
    } else if (typeof type === 'string' && LIVE.has(type)) {
      spec.push(entry('type', value('virtiofs')));
      if (type !== 'virtiofs') comments.push(...report.change(folder.call, `${folder.guest}: a ${type} folder is a live virtiofs folder here`).comments);
    } else {
      drop(`folder type ${showValue(type)} for ${folder.guest}: not one vmfile has; rsync is used`);
      spec.push(entry('type', value('rsync')));
    }
    const exclude = folder.options['rsync__exclude'];
    if (exclude !== undefined) {
      const patterns = (Array.isArray(exclude) ? exclude : [exclude]).filter((p): p is string => typeof p === 'string' && p !== '' && !/[\x00-\x1f\x7f]/.test(p));
      const rsync = spec.some((e) => e.key === 'type' && e.value?.kind === 'value' && e.value.value === 'rsync');
      if (!rsync) drop(`rsync__exclude on ${folder.guest}, which is not an rsync folder here`);
      else if (patterns.length > 0) spec.push(entry('exclude', array(patterns.map((p) => entry(undefined, value(p))))));
    }
    for (const [key, v] of Object.entries(folder.options)) {
      if (!KNOWN.has(key)) drop(`synced_folder option ${key}: ${showValue(v)} for ${folder.guest}`);
      if (key === 'id' && folder.guest !== '/vagrant') drop(`synced_folder id ${showValue(v)}: vmfile names folders by guest path`);
    }
    entries.push({ ...entry(undefined, object(spec)), comments });
    folders.push({ host: hostPath(folder.host), guest: folder.guest });
  }
  return { entries: [...entries, ...broken], folders };
}

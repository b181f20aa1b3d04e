/** oclif's explicit command table: ids use ":" and show as "box add". */
import BoxAdd from './box/add.js';
import BoxBuild from './box/build.js';
import BoxList from './box/list.js';
import BoxOutdated from './box/outdated.js';
import BoxPrune from './box/prune.js';
import BoxRemove from './box/remove.js';
import BoxUpdate from './box/update.js';
import CacheList from './cache/list.js';
import CachePrune from './cache/prune.js';
import Completion from './completion.js';
import Destroy from './destroy.js';
import Download from './download.js';
import GlobalStatus from './global-status.js';
import Halt from './halt.js';
import Init from './init.js';
import Lock from './lock.js';
import LockExport from './lock/export.js';
import LockImport from './lock/import.js';
import Package from './package.js';
import Port from './port.js';
import Provision from './provision.js';
import Reload from './reload.js';
import Resume from './resume.js';
import Rsync from './rsync.js';
import SnapshotDelete from './snapshot/delete.js';
import SnapshotList from './snapshot/list.js';
import SnapshotPop from './snapshot/pop.js';
import SnapshotPush from './snapshot/push.js';
import SnapshotRestore from './snapshot/restore.js';
import SnapshotSave from './snapshot/save.js';
import SshConfig from './ssh-config.js';
import Ssh from './ssh.js';
import Status from './status.js';
import Suspend from './suspend.js';
import Up from './up.js';
import Upload from './upload.js';
import Validate from './validate.js';

export const COMMANDS = {
  init: Init,
  up: Up,
  halt: Halt,
  ssh: Ssh,
  upload: Upload,
  download: Download,
  'ssh-config': SshConfig,
  status: Status,
  'global-status': GlobalStatus,
  destroy: Destroy,
  provision: Provision,
  validate: Validate,
  port: Port,
  lock: Lock,
  'lock:export': LockExport,
  'lock:import': LockImport,
  package: Package,
  rsync: Rsync,
  suspend: Suspend,
  resume: Resume,
  reload: Reload,
  'snapshot:save': SnapshotSave,
  'snapshot:restore': SnapshotRestore,
  'snapshot:list': SnapshotList,
  'snapshot:delete': SnapshotDelete,
  'snapshot:push': SnapshotPush,
  'snapshot:pop': SnapshotPop,
  'box:build': BoxBuild,
  'box:add': BoxAdd,
  'box:list': BoxList,
  'box:remove': BoxRemove,
  'box:outdated': BoxOutdated,
  'box:update': BoxUpdate,
  'box:prune': BoxPrune,
  'cache:list': CacheList,
  'cache:prune': CachePrune,
  completion: Completion,
};

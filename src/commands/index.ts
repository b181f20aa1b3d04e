/** oclif's explicit command table: ids use ":" and show as "box add". */
import BoxAdd from './box/add.js';
import BoxBuild from './box/build.js';
import BoxList from './box/list.js';
import BoxRemove from './box/remove.js';
import Destroy from './destroy.js';
import Halt from './halt.js';
import Provision from './provision.js';
import SshConfig from './ssh-config.js';
import Ssh from './ssh.js';
import Status from './status.js';
import Up from './up.js';
import Validate from './validate.js';

export const COMMANDS = {
  up: Up,
  halt: Halt,
  ssh: Ssh,
  'ssh-config': SshConfig,
  status: Status,
  destroy: Destroy,
  provision: Provision,
  validate: Validate,
  'box:build': BoxBuild,
  'box:add': BoxAdd,
  'box:list': BoxList,
  'box:remove': BoxRemove,
};

import { copyCommand } from '../cli/copy-command.js';

export default copyCommand('download');

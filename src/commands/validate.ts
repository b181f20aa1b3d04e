import { VmfileCommand } from '../cli/command.js';
import { formatSize } from '../vmfile/size.js';
import { counted } from '../ui/words.js';

export default class Validate extends VmfileCommand {
  static override summary = 'Check the Vmfile, and everything vmup checks before it creates anything, without booting';

  async run(): Promise<void> {
    const { validate } = await import('../services/validate.js');
    const { flags } = await this.parse(Validate);
    const project = await this.project(flags);
    for (const machine of await validate({ project }, this.context())) {
      const box = machine.box.version === undefined ? machine.box.name : `${machine.box.name} ${machine.box.version}`;
      this.log(`${machine.name}: box ${box}, ${counted(machine.cpus, 'CPU')}, ${formatSize(machine.memory)} memory, ${formatSize(machine.disk)} disk, ${counted(machine.provision.length, 'provisioning step')}`);
    }
    this.log(`${project.vmfilePath} is valid`);
  }
}

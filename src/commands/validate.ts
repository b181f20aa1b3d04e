import { VmfileCommand } from '../cli/command.js';
import { formatSize } from '../vmfile/size.js';

export default class Validate extends VmfileCommand {
  static override summary = 'Check the Vmfile without booting anything';

  async run(): Promise<void> {
    const { flags } = await this.parse(Validate);
    const project = await this.project(flags);
    for (const machine of project.machines) {
      const box = machine.box.version === undefined ? machine.box.name : `${machine.box.name} ${machine.box.version}`;
      this.log(`${machine.name}: box ${box}, ${machine.cpus} CPUs, ${formatSize(machine.memory)} memory, ${formatSize(machine.disk)} disk, ${machine.provision.length} provisioning steps`);
    }
    this.log(`${project.vmfilePath} is valid`);
  }
}

import { Flags } from '@oclif/core';
import { VmfileCommand } from '../../cli/command.js';
import { formatSize } from '../../vmfile/size.js';
import { counted } from '../../ui/words.js';

export default class BoxList extends VmfileCommand {
  static override summary = 'List installed boxes';
  static override flags = { json: Flags.boolean({ description: 'print JSON' }) };

  async run(): Promise<void> {
    const { listBoxesWithWarmStates } = await import('../../services/box.js');
    const { flags } = await this.parse(BoxList);
    const boxes = await listBoxesWithWarmStates(this.context().home);
    if (flags.json) {
      const warmOf = (states: typeof boxes[number]['warm']) => states.map(({ key, shape, bytes, createdAt, layer }) => ({ key, shape, bytes, createdAt, ...(layer === undefined ? {} : { layer }) }));
      this.log(JSON.stringify(boxes.map(({ box, warm }) => ({ ...box.metadata, warmStates: warmOf(warm) })), null, 2));
      return;
    }
    if (boxes.length === 0) this.log('no boxes installed (vmfile box build debian-12, or vmfile box add NAME FILE)');
    for (const { box: { metadata }, warm } of boxes) {
      this.log(`${metadata.name.padEnd(16)} ${metadata.version.padEnd(12)} ${formatSize(metadata.disk.virtualSize).padEnd(7)} sha256:${metadata.disk.sha256.slice(0, 16)}  ${metadata.source.kind}`);
      for (const state of warm) {
        const { shape } = state;
        const what = state.layer === undefined ? 'warm state' : `provisioning layer of step "${state.layer.step.name}" over`;
        this.log(`  ${what}: ${counted(shape.cpus, 'CPU')}, ${formatSize(shape.memory)} memory, ${formatSize(shape.disk)} disk, ${shape.accel}; ${formatSize(state.bytes)} on disk`);
      }
    }
  }
}

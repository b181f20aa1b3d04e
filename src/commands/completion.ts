import { Args } from '@oclif/core';
import { VmfileCommand } from '../cli/command.js';
import { completionScript } from '../cli/completion-script.js';

export default class Completion extends VmfileCommand {
  static override summary = 'Print shell completion for vmfile, vmup, vmssh and vmhalt; load it with: eval "$(vmfile completion bash)" in ~/.bashrc';
  static override args = { shell: Args.string({ description: 'the shell', options: ['bash', 'zsh'], required: true }) };

  async run(): Promise<void> {
    const { args } = await this.parse(Completion);
    const commands = this.config.commands
      .filter((command) => command.hidden !== true)
      .map((command) => ({
        id: command.id.replaceAll(':', ' '),
        flags: Object.values(command.flags)
          .filter((flag) => flag.hidden !== true)
          .flatMap((flag) => [`--${flag.name}`, ...(flag.char === undefined ? [] : [`-${flag.char}`]), ...(flag.type === 'boolean' && flag.allowNo === true ? [`--no-${flag.name}`] : [])]),
      }));
    process.stdout.write(completionScript(args.shell as 'bash' | 'zsh', commands));
  }
}

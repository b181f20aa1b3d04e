/** What every vmfile command shares: --vmfile, --debug, loading the project, the service context. */
import { Command, Flags } from '@oclif/core';
import type { Project } from '../vmfile/config.js';
import type { ServiceContext } from '../instance/context.js';
import { checkedHome } from '../store/home.js';
import { vmfileHome } from '../store/layout.js';
import { consoleReporter } from '../ui/console.js';

/**
 * Commands import their service (and the Vmfile loader) when they run, not at start-up,
 * so each command loads only the modules it uses: `vmfile status` must not pay for
 * ssh2, handlebars or execa.
 */
export abstract class VmfileCommand extends Command {
  static override baseFlags = {
    vmfile: Flags.string({ description: 'path to the Vmfile (default: Vmfile.ts here or in a parent directory)', helpGroup: 'GLOBAL' }),
    debug: Flags.boolean({ description: 'show stack traces and extra detail', helpGroup: 'GLOBAL' }),
  };

  protected async project(flags: { vmfile?: string | undefined }): Promise<Project> {
    const { loadProject } = await import('../project/load.js');
    return loadProject({ cwd: process.cwd(), ...(flags.vmfile === undefined ? {} : { vmfile: flags.vmfile }) });
  }

  /** The one place a command resolves vmfile's home, and refuses one others could change (store/home.ts). */
  protected context(): ServiceContext {
    return { home: checkedHome(vmfileHome()), reporter: consoleReporter(), env: process.env };
  }

  /** Errors go to the single handler in cli/main.ts, untouched. */
  protected override async catch(error: Error & { exitCode?: number }): Promise<unknown> {
    throw error;
  }
}

/** What every use-case needs besides its own options. */
import type { Reporter } from '../ui/reporter.js';

export interface ServiceContext {
  /** vmfile's home: the box store. */
  home: string;
  reporter: Reporter;
  env: NodeJS.ProcessEnv;
}

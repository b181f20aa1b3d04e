/** What every requirement of a start sees (guest/requirements.ts): the machine, its record, the session once SSH answers. */
import type { Driver } from '../driver/driver.js';
import type { PlannedFolder } from '../folders/plan.js';
import type { ProvisionMode } from '../provision/runner.js';
import type { SshSession } from '../ssh/client.js';
import type { MachinePaths } from '../store/layout.js';
import type { BootIdLocation, MachineRecord } from '../store/machine.js';
import type { Reporter } from '../ui/reporter.js';
import type { MachineConfig, Project } from '../vmfile/config.js';
import type { FirstLogin } from './first-login.js';

/** A start whose machine runs: what every requirement sees. */
export interface GuestStart {
  project: Project;
  machine: MachineConfig;
  paths: MachinePaths;
  driver: Driver;
  reporter: Reporter;
  /** VMFILE_HOME: the package store a step's packages go to. */
  home: string;
  record: MachineRecord;
  /** A fresh boot (from disk or from a warm state), or a continuation of a suspended machine. */
  start: 'boot' | 'resume';
  /** Its memory came from a warm state: a machine's first start, or a layer's generic machine. */
  warm: boolean;
  /**
   * A warm state's or provisioning layer's generic machine: no identity to take, no
   * folders or network; what it finds out for the state (the boot ID) is kept here.
   */
  generic?: { bootId?: BootIdLocation };
  /** Which steps run: 'boot' = Vagrant's default; 'all' = --provision; 'none' = --no-provision; or exactly some. */
  provision: 'boot' | 'all' | 'none' | ProvisionMode;
  folders: readonly PlannedFolder[];
  pid: number;
  sshPort: number;
  /** Open once "SSH answers" is met; closed when the start ends. */
  session?: SshSession;
  /** While the machine still has its box's or warm state's login: how it is reached, and whether the session is that login. */
  firstLogin?: FirstLogin & { session: boolean };
  stepsRun: number;
}

/** The open session; a requirement that needs it runs after "SSH answers". */
export function session(c: GuestStart): SshSession {
  if (c.session === undefined) throw new Error('a requirement ran before SSH answered');
  return c.session;
}

/** What vmup decided for each machine before starting any: its box, folders, accelerator and boot. */
import type { InstalledBox } from '../box/store.js';
import type { Accel } from '../driver/driver.js';
import type { PlannedFolder } from '../folders/plan.js';
import type { Instance } from '../instance/inspect.js';
import type { MachineBoot } from '../vmfile/boot.js';
import type { MachineConfig, Project } from '../vmfile/config.js';

export interface StartOptions {
  project: Project;
  /** 'boot' = Vagrant's default; 'all' = --provision; 'none' = --no-provision. */
  provision: 'boot' | 'all' | 'none';
  /** --no-cache: a new machine runs every step itself (lifecycle/layers.ts). */
  noCache?: boolean;
}

export interface MachinePlan {
  machine: MachineConfig;
  /** The machine as inspected, under its lock, once for the whole command. */
  instance: Instance;
  box: InstalledBox;
  folders: PlannedFolder[];
  /** The accelerator its host check chose, and the line that says so when it is not the obvious one. */
  accel: Accel;
  accelNotice?: string | undefined;
  /** How a new boot starts it (a resumed machine keeps the boot it was suspended with). */
  boot: MachineBoot;
}

export interface UpResult {
  machine: string;
  outcome: 'booted' | 'already running' | 'resumed';
  sshPort: number;
  accel: string;
  stepsRun: number;
}

/**
 * The Ansible step: the host's ansible-playbook runs the playbook against the machines
 * of this Vmfile through their own pinned SSH settings (no host key is ever accepted
 * blindly). Each run gets a private directory holding an OpenSSH config with a block per
 * running machine, a JSON inventory (every running machine, groups as the step declares
 * them) and the extra vars as a JSON file, so no Vmfile value reaches a command line or
 * a shell. Like Vagrant's provisioner, the play is limited to the machine being
 * provisioned unless the step says otherwise.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ConfigError } from '../errors.js';
import { requireCommands, run } from '../exec.js';
import { sshConfigBlock } from '../ssh/config.js';
import type { ProvisionStep } from '../vmfile/steps.js';

type AnsibleStep = Extract<ProvisionStep, { kind: 'ansible' }>;

/** A machine Ansible can reach: its name and the OpenSSH options that reach it. */
export interface AnsibleHost {
  name: string;
  sshOptions: Record<string, string>;
}

export interface AnsibleRun {
  machine: string;
  projectDir: string;
  hosts: readonly AnsibleHost[];
  onLine: (line: string) => void;
}

/** The OpenSSH config: one Host block per machine, values quoted for ssh_config. */
export function sshConfigFor(hosts: readonly AnsibleHost[]): string {
  return hosts.map((host) => sshConfigBlock(host.name, host.name, host.sshOptions)).join('\n');
}

/** The inventory (JSON is YAML, which Ansible reads): every host under `all`, and the step's groups. */
export function inventoryFor(hosts: readonly AnsibleHost[], groups: Record<string, string[]>, sshConfig: string): unknown {
  const names = new Set(hosts.map((host) => host.name));
  return {
    all: {
      hosts: Object.fromEntries(hosts.map((host) => [host.name, { ansible_host: host.name }])),
      vars: { ansible_ssh_common_args: `-F ${sshConfig}`, ansible_python_interpreter: 'auto_silent' },
      children: Object.fromEntries(Object.entries(groups).map(([group, members]) => [group, { hosts: Object.fromEntries(members.filter((member) => names.has(member)).map((member) => [member, {}])) }])),
    },
  };
}

/** Runs the playbook; resolves with ansible-playbook's exit code. */
export async function runAnsible(step: AnsibleStep, context: AnsibleRun): Promise<number> {
  await requireCommands(['ansible-playbook'], `provisioning step "${step.name}"`);
  const dir = await mkdtemp(join(tmpdir(), 'vmfile-ansible-'));
  try {
    const sshConfig = join(dir, 'ssh_config');
    const inventory = join(dir, 'inventory.json');
    const extraVars = join(dir, 'extra-vars.json');
    await writeFile(sshConfig, sshConfigFor(context.hosts), { mode: 0o600 });
    await writeFile(inventory, JSON.stringify(inventoryFor(context.hosts, step.groups, sshConfig), null, 2), { mode: 0o600 });
    await writeFile(extraVars, JSON.stringify(step.extraVars), { mode: 0o600 });
    const result = await run('ansible-playbook', ['-i', inventory, '--limit', step.limit ?? context.machine, '-e', `@${extraVars}`, '--', resolve(context.projectDir, step.playbook)], {
      purpose: `run the Ansible playbook of step "${step.name}"`,
      env: {
        ...process.env,
        ANSIBLE_FORCE_COLOR: '0',
        ANSIBLE_NOCOLOR: '1',
        ANSIBLE_RETRY_FILES_ENABLED: 'False',
        ANSIBLE_HOST_KEY_CHECKING: 'True',
        // Ansible's own default multiplexing keeps masters in ~/.ansible/cp; one run does not need them.
        ANSIBLE_SSH_ARGS: '-o ControlMaster=no',
      } as Record<string, string>,
      onLine: context.onLine,
      allowExitCodes: Array.from({ length: 255 }, (_, index) => index + 1),
    });
    return result.exitCode;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Group members must be machines of this Vmfile. */
export function checkAnsibleGroups(step: AnsibleStep, machines: readonly string[], machine: string): void {
  for (const [group, members] of Object.entries(step.groups)) {
    const unknown = members.filter((member) => !machines.includes(member));
    if (unknown.length > 0) {
      throw new ConfigError(`machine "${machine}": provisioning step "${step.name}": ansible.groups.${group} names ${unknown.map((name) => `"${name}"`).join(', ')}, not machines of this Vmfile`, {
        hint: `the machines are: ${machines.join(', ')}`,
      });
    }
  }
}

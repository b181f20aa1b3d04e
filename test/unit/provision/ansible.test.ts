import { describe, expect, test } from 'vitest';
import { checkAnsibleGroups, inventoryFor, sshConfigFor } from '../../../src/provision/ansible.js';
import { ConfigError } from '../../../src/errors.js';
import { parseVmfile } from '../../../src/vmfile/config.js';

const hosts = [
  { name: 'web', sshOptions: { HostName: '127.0.0.1', Port: '40001', StrictHostKeyChecking: 'yes' } },
  { name: 'db', sshOptions: { HostName: '127.0.0.1', Port: '40002', StrictHostKeyChecking: 'yes' } },
];

function parse(step: unknown) {
  return () => parseVmfile({ box: 'debian-12', provision: [step] }, '/p/Vmfile.ts', '/p');
}

describe('the Ansible step', () => {
  test('parses to a step with defaults', () => {
    const [step] = parseVmfile({ box: 'debian-12', provision: [{ name: 'site', ansible: { playbook: 'site.yml' } }] }, '/p/Vmfile.ts', '/p').machines[0]?.provision ?? [];
    expect(step).toEqual({ id: 'site', name: 'site', run: 'once', kind: 'ansible', playbook: 'site.yml', extraVars: {}, groups: {} });
  });

  test.each([
    [{ ansible: { playbook: 'a.yml' }, env: { A: 'b' } }, 'provision[0].env: "env" does not apply to an "ansible" step'],
    [{ ansible: { playbook: 'a.yml' }, shell: 'true' }, 'a step has exactly one of "shell", "script", "file" or "ansible", this one has "shell" and "ansible"'],
    [{ ansible: { playbook: 'a.yml', limit: 'web; rm -rf /' } }, 'provision[0].ansible.limit: limit is an Ansible host pattern'],
    [{ ansible: { playbook: 'a.yml', groups: { 'bad-name': ['web'] } } }, 'group names are letters, digits and _'],
    [{ ansible: { playbook: 'a.yml', colour: 'red' } }, 'unknown key "colour"'],
  ])('refuses %j', (step, message) => {
    expect(parse(step)).toThrow(ConfigError);
    expect(parse(step)).toThrow(message);
  });

  test('the inventory holds every running machine and the declared groups, members that are not running left out', () => {
    expect(inventoryFor(hosts, { app: ['web'], data: ['db', 'cache'] }, '/run/ssh_config')).toEqual({
      all: {
        hosts: { web: { ansible_host: 'web' }, db: { ansible_host: 'db' } },
        vars: { ansible_ssh_common_args: '-F /run/ssh_config', ansible_python_interpreter: 'auto_silent' },
        children: { app: { hosts: { web: {} } }, data: { hosts: { db: {} } } },
      },
    });
  });

  test('the SSH config has one pinned block per machine', () => {
    expect(sshConfigFor(hosts)).toBe('Host web\n  HostName "127.0.0.1"\n  Port "40001"\n  StrictHostKeyChecking "yes"\n\nHost db\n  HostName "127.0.0.1"\n  Port "40002"\n  StrictHostKeyChecking "yes"\n');
  });

  test('a group member that is not a machine of the Vmfile is a configuration error naming the group', () => {
    const step = { kind: 'ansible' as const, id: 's', name: 's', run: 'once' as const, playbook: 'a.yml', extraVars: {}, groups: { app: ['web', 'cache'] } };
    expect(() => checkAnsibleGroups(step, ['web', 'db'], 'web')).toThrow('machine "web": provisioning step "s": ansible.groups.app names "cache", not machines of this Vmfile');
  });
});

/** ssh_config as vmfile writes it, read back by the real OpenSSH client (ssh -G prints the configuration it would use). */
import { execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { ConfigError } from '../../../src/errors.js';
import { openSshOptions } from '../../../src/guest/openssh.js';
import { checkSshOptions, sshConfigBlock, sshOptionArgs } from '../../../src/ssh/config.js';
import { machinePaths } from '../../../src/store/layout.js';
import { tempDir } from '../temp-dir.js';

/** What OpenSSH makes of `config` for `host`: its option names lower-cased, as ssh -G prints them. */
async function sshSees(config: string, host: string): Promise<Map<string, string>> {
  const dir = await tempDir();
  await writeFile(join(dir, 'config'), config);
  const output = execFileSync('ssh', ['-G', '-F', join(dir, 'config'), host], { encoding: 'utf8' });
  return new Map(output.split('\n').map((line) => [line.split(' ')[0] ?? '', line.slice(line.indexOf(' ') + 1)]));
}

const options = (user: string) => ({ HostName: '127.0.0.1', Port: '40001', User: user, IdentityFile: '/p/my project/.vmfile/machines/web/id_ed25519' });

function refusal(run: () => unknown): ConfigError {
  try {
    run();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('sshConfigBlock', () => {
  test('OpenSSH reads every value back as written, spaces in paths included', async () => {
    const seen = await sshSees(sshConfigBlock('web', 'web', options('vm')), 'web');
    expect(seen.get('hostname')).toBe('127.0.0.1');
    expect(seen.get('port')).toBe('40001');
    expect(seen.get('user')).toBe('vm');
    expect(seen.get('identityfile')).toBe('/p/my project/.vmfile/machines/web/id_ed25519');
    expect(seen.get('proxycommand')).toBeUndefined();
  });

  test('without the check, a newline in User becomes a ProxyCommand OpenSSH would run (why the check exists)', async () => {
    const user = 'vm"\n  ProxyCommand "touch /tmp/pwned';
    const unchecked = `Host web\n${Object.entries(options(user)).map(([key, value]) => `  ${key} "${value}"`).join('\n')}\n`;
    expect((await sshSees(unchecked, 'web')).get('proxycommand')).toContain('touch /tmp/pwned');
  });

  test.each([
    ['a newline', 'vm"\n  ProxyCommand "touch /tmp/pwned'],
    ['a bare newline', 'vm\nProxyCommand touch /tmp/pwned'],
    ['a carriage return', 'vm\rx'],
    ['a NUL', 'vm\u0000'],
    ['a tab', 'vm\tx'],
    ['DEL', 'vm\u007f'],
    ['an escape sequence', 'vm\u001b[2J'],
    ['a double quote', 'vm" ProxyCommand "id'],
    ['a backslash', 'vm\\'],
  ])('a User with %s is a ConfigError naming the machine and the field', (_label, user) => {
    const error = refusal(() => sshConfigBlock('web', 'web', options(user)));
    expect(error.exitCode).toBe(78);
    expect(error.message).toMatch(/^machine "web": refusing to write an SSH configuration with User "/);
    expect(error.message).not.toContain('\n');
    expect(error.hint).toContain('box.json');
  });

  test('a path with a newline is refused the same way', () => {
    expect(refusal(() => sshConfigBlock('web', 'web', { ...options('vm'), UserKnownHostsFile: '/p/x\nProxyCommand id' })).message).toContain('UserKnownHostsFile "/p/x\\nProxyCommand id"');
  });

  test.each(['two words', 'web\nProxyCommand id', '', 'web"'])('a Host alias %j is refused', (host) => {
    expect(refusal(() => sshConfigBlock('web', host, options('vm'))).message).toContain(`the host alias ${JSON.stringify(host)}`);
  });

  test('every problem is named at once', () => {
    const error = refusal(() => checkSshOptions('db', 'db', { User: 'a\nb', IdentityFile: '/k"ey', 'Bad Key': 'x' }));
    expect(error.message).toContain('User "a\\nb", IdentityFile "/k\\"ey", the option name "Bad Key"');
  });
});

describe('sshOptionArgs', () => {
  test('one -o per option', () => {
    expect(sshOptionArgs('web', { Port: '40001', User: 'vm' })).toEqual(['-o', 'Port=40001', '-o', 'User=vm']);
  });

  test('refuses what the config file refuses', () => {
    expect(refusal(() => sshOptionArgs('web', { User: 'vm\nProxyCommand id' })).message).toMatch(/^machine "web": refusing/);
  });
});

describe('a project path that OpenSSH would expand', () => {
  const state = { name: 'web', instanceId: 'vmfile-1', createdAt: '2026-11-28T00:00:00Z', box: { name: 'debian-12', version: '1', sha256: 'a'.repeat(64) }, user: 'vm' };

  /** What `ssh -G` resolves for the machine's options given as -o arguments. */
  function resolvedWithArgs(args: readonly string[]): Map<string, string> {
    const output = execFileSync('ssh', ['-G', '-F', '/dev/null', ...args, 'web'], { encoding: 'utf8' });
    return new Map(output.split('\n').map((line) => [line.split(' ')[0] ?? '', line.slice(line.indexOf(' ') + 1)]));
  }

  test.each(['/srv/100%u/app', '/srv/a%hb%%c/app', '/srv/50%/app'])('%s stays literal in the pinned known_hosts and ControlPath, as -o and in a config file', async (project) => {
    const paths = machinePaths(project, 'web');
    const options = openSshOptions(paths, state, 40022, undefined);

    for (const seen of [resolvedWithArgs(sshOptionArgs('web', options)), await sshSees(sshConfigBlock('web', 'web', options), 'web')]) {
      expect(seen.get('userknownhostsfile')).toBe(paths.knownHosts);
      expect(seen.get('controlpath')).toBe(paths.sshControl);
    }
    // OpenSSH expands IdentityFile when it loads the key (ssh -G prints it unexpanded): doubled for that.
    expect(sshOptionArgs('web', options)).toContain(`IdentityFile=${paths.privateKey.replaceAll('%', '%%')}`);
  });

  test('a path with ${ (an environment variable to OpenSSH, with no escape) is refused', () => {
    const paths = machinePaths('/srv/${HOME}/app', 'web');
    expect(refusal(() => sshOptionArgs('web', openSshOptions(paths, state, 40022, undefined))).message).toContain('UserKnownHostsFile "/srv/${HOME}/app/');
  });
});

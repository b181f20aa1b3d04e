/**
 * OpenSSH client configuration as vmfile writes it: config blocks (ssh -F FILE) for the
 * programs it runs over SSH (rsync, ansible) and for `vmfile ssh-config`, and `-o`
 * options for ssh and scp. Every value passes `checkSshOptions` first. Some come from
 * outside: the login user is a box's (box.json), paths contain the project's directory.
 * A newline in one would start a directive of its own — `ProxyCommand` runs any command
 * on the host — and a double quote or a backslash would end or escape the quoting, so
 * a value with any of them is refused, never escaped.
 *
 * OpenSSH also expands tokens (%u, %h...) in some options and ${VAR} in the paths among
 * them (ssh_config(5), TOKENS and ENVIRONMENT VARIABLES); vmfile's values are literal,
 * so a `%` there is written `%%`, and `${`, which has no escape, is refused.
 */
import { ConfigError } from '../errors.js';

/** Control characters (C0 and DEL), the double quote and the backslash. */
const UNSAFE = /[\u0000-\u001f\u007f"\\]/;

/** Options whose values OpenSSH expands %-tokens in (OpenSSH 9.2). */
const PERCENT_EXPANDED: ReadonlySet<string> = new Set([
  'CertificateFile', 'ControlPath', 'IdentityAgent', 'IdentityFile', 'KnownHostsCommand', 'LocalCommand', 'LocalForward',
  'RemoteCommand', 'RemoteForward', 'UserKnownHostsFile', 'ProxyCommand', 'ProxyJump', 'HostName',
].map((key) => key.toLowerCase()));

/** Options whose values OpenSSH also expands ${VAR} in. */
const DOLLAR_EXPANDED: ReadonlySet<string> = new Set(['CertificateFile', 'ControlPath', 'IdentityAgent', 'IdentityFile', 'KnownHostsCommand', 'UserKnownHostsFile'].map((key) => key.toLowerCase()));

/** The value as OpenSSH must be given it to read it literally. */
function literal(key: string, value: string): string {
  return PERCENT_EXPANDED.has(key.toLowerCase()) ? value.replaceAll('%', '%%') : value;
}

/**
 * Refuses a Host alias or option value that could end its line or its quoting. `machine`
 * names whose settings they are, for the message.
 */
export function checkSshOptions(machine: string, host: string, options: Record<string, string>): void {
  const problems: string[] = [];
  if (host === '' || UNSAFE.test(host) || /\s/.test(host)) problems.push(`the host alias ${JSON.stringify(host)}`);
  for (const [key, value] of Object.entries(options)) {
    if (!/^[A-Za-z]+$/.test(key)) problems.push(`the option name ${JSON.stringify(key)}`);
    else if (UNSAFE.test(value) || (DOLLAR_EXPANDED.has(key.toLowerCase()) && value.includes('${'))) problems.push(`${key} ${JSON.stringify(value)}`);
  }
  if (problems.length === 0) return;
  throw new ConfigError(
    `machine "${machine}": refusing to write an SSH configuration with ${problems.join(', ')}: control characters, double quotes and backslashes could add SSH directives of their own, and OpenSSH would read \${ as an environment variable`,
    { hint: 'a User like this comes from the box (box.json "user"): remove the machine and use a box you trust; a path like this is the project\'s: move the project to a directory with a plain name' },
  );
}

/** One config block, every value quoted. */
export function sshConfigBlock(machine: string, host: string, options: Record<string, string>): string {
  checkSshOptions(machine, host, options);
  return `Host ${host}\n${Object.entries(options).map(([key, value]) => `  ${key} "${literal(key, value)}"`).join('\n')}\n`;
}

/** The same options as ssh/scp arguments (-o Key=value). */
export function sshOptionArgs(machine: string, options: Record<string, string>): string[] {
  checkSshOptions(machine, machine, options);
  return Object.entries(options).flatMap(([key, value]) => ['-o', `${key}=${literal(key, value)}`]);
}

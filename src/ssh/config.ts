/** An OpenSSH client config block (ssh -F FILE), the form vmfile writes for the programs it runs over SSH (rsync, ansible). */
export function sshConfigBlock(host: string, options: Record<string, string>): string {
  return `Host ${host}\n${Object.entries(options).map(([key, value]) => `  ${key} "${value}"`).join('\n')}\n`;
}

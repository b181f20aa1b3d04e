/**
 * What a libvirt URI says about reaching its host (the URI itself was checked by the
 * Vmfile schema, or by the machine record's, against LIBVIRT_URI). A qemu+ssh:// host is
 * reached by libvirt through `ssh` (or the URI's `command`), with the URI's user, port
 * and `keyfile`; vmfile goes to that host's loopback the same way, so one SSH setup
 * (the user's keys, known_hosts and config) serves both.
 */
export type LibvirtUri = { local: true } | { local: false; host: string; user?: string; port?: number; keyfile?: string; command?: string };

export function parseLibvirtUri(uri: string): LibvirtUri {
  if (uri.startsWith('qemu:///')) return { local: true };
  const url = new URL(uri);
  const keyfile = url.searchParams.get('keyfile') ?? undefined;
  const command = url.searchParams.get('command') ?? undefined;
  return {
    local: false,
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    ...(url.username === '' ? {} : { user: decodeURIComponent(url.username) }),
    ...(url.port === '' ? {} : { port: Number(url.port) }),
    ...(keyfile === undefined ? {} : { keyfile }),
    ...(command === undefined ? {} : { command }),
  };
}

/** "root@lab:2222", for messages. */
export function describeHost(uri: string): string {
  const parsed = parseLibvirtUri(uri);
  if (parsed.local) return 'this host';
  return `${parsed.user === undefined ? '' : `${parsed.user}@`}${parsed.host}${parsed.port === undefined ? '' : `:${parsed.port}`}`;
}

/**
 * What a libvirt URI says about reaching its host (the URI itself was checked by the
 * Vmfile schema, or by the machine record's, against LIBVIRT_URI). A qemu+ssh:// host is
 * reached by libvirt through `ssh` (or the URI's `command`), with the URI's user, port
 * and `keyfile`; vmfile goes to that host's loopback the same way, so one SSH setup
 * (the user's keys, known_hosts and config) serves both.
 *
 * Who may say how a host is reached. Some of libvirt's URI options name a program it runs
 * (`command`, the ssh client; `netcat`, run on the host) or a socket, or turn off a check
 * (`no_verify`). A Vmfile may name them on purpose: the user runs their own Vmfile. A
 * machine record (machine.json) is only a file in the project's .vmfile/, which a cloned
 * repository can carry and which `global-status` reads for every project on the host, so
 * a record never chooses a program. The choice made here: the record keeps the host
 * alone (recordedUri: scheme, user, host, port, path and `keyfile`, which names a key
 * ssh reads, never a program), and a command takes the other options from its Vmfile
 * when the Vmfile names the same host (reachUri, applied where a driver is made:
 * driver/registry.ts). A command without a Vmfile (global-status) reaches the host with
 * plain ssh and the user's ssh_config.
 */
export type LibvirtUri = { local: true } | { local: false; host: string; user?: string; port?: number; keyfile?: string; command?: string };

/** The only URI options a record may carry: they name no program and turn no check off. */
const RECORDED_OPTIONS: ReadonlySet<string> = new Set(['keyfile']);

export function parseLibvirtUri(uri: string): LibvirtUri {
  if (uri.startsWith('qemu:///')) return { local: true };
  const url = new URL(uri.split('?')[0] ?? uri);
  const options = new Map(uriOptions(uri).map((option) => [option.name, option.value]));
  const keyfile = options.get('keyfile');
  const command = options.get('command');
  return {
    local: false,
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    ...(url.username === '' ? {} : { user: decodeURIComponent(url.username) }),
    ...(url.port === '' ? {} : { port: Number(url.port) }),
    ...(keyfile === undefined ? {} : { keyfile }),
    ...(command === undefined ? {} : { command }),
  };
}

/**
 * The URI as a machine record keeps it: the host and `keyfile`, without any option that
 * names a program or a socket or changes how the host is checked. Idempotent.
 */
export function recordedUri(uri: string): string {
  const [base = uri] = uri.split('?');
  const kept = uriOptions(uri).filter((option) => RECORDED_OPTIONS.has(option.name));
  return kept.length === 0 ? base : `${base}?${kept.map((option) => option.raw).join('&')}`;
}

/**
 * The URI a command uses for a machine whose record says `recorded`: the Vmfile's own
 * URI when it names the same host (its options are the user's choice), else the
 * record's host alone.
 */
export function reachUri(recorded: string, vmfile: string | undefined): string {
  const host = recordedUri(recorded);
  return vmfile !== undefined && recordedUri(vmfile) === host ? vmfile : host;
}

/**
 * The query's options as libvirt reads them: split on `&` or `;`, each name and value
 * percent-decoded (a `+` stays a `+`); one that does not decode is dropped, as it names
 * nothing vmfile could check.
 */
function uriOptions(uri: string): { name: string; value: string; raw: string }[] {
  const query = uri.includes('?') ? uri.slice(uri.indexOf('?') + 1) : '';
  return query
    .split(/[&;]/)
    .filter((raw) => raw !== '')
    .flatMap((raw) => {
      const equals = raw.indexOf('=');
      try {
        const name = decodeURIComponent(equals === -1 ? raw : raw.slice(0, equals));
        const value = equals === -1 ? '' : decodeURIComponent(raw.slice(equals + 1));
        return [{ name, value, raw }];
      } catch {
        return [];
      }
    });
}

/** "root@lab:2222", for messages. */
export function describeHost(uri: string): string {
  const parsed = parseLibvirtUri(uri);
  if (parsed.local) return 'this host';
  return `${parsed.user === undefined ? '' : `${parsed.user}@`}${parsed.host}${parsed.port === undefined ? '' : `:${parsed.port}`}`;
}

/**
 * A machine's libvirt domain XML, rendered from templates/libvirt/domain.xml.hbs by a
 * pure function: every value is XML-escaped by the one helper the template uses, and a
 * value the template names but the caller did not give is an error, not an empty string.
 *
 * The guest is reached as under the built-in driver: user-mode networking with
 * forwarded ports on the host's loopback. libvirt 9.0 (Debian 12) has no working
 * `<interface type='user'>` with port forwards (its passt backend is refused by the
 * XML parser there), so the NIC is QEMU's own `-netdev user,hostfwd=…` passed through
 * `<qemu:commandline>`, at a fixed PCI slot libvirt does not hand out. libvirt marks
 * such a domain "custom-argv" (tainted); it is otherwise managed as any other.
 */
import { readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type Handlebars from 'handlebars';
import { InternalError } from '../../errors.js';
import { hostForward, tcgCacheMiB, type PortForward } from '../../qemu/argv.js';
import type { Accel } from '../driver.js';

export interface DomainSpec {
  domain: string;
  /** Kept from the domain's earlier definition, when redefining it. */
  uuid?: string;
  machine: string;
  /** The machine's directory on this host: marks the domain as this machine's. */
  machineDir: string;
  accel: Accel;
  cpus: number;
  /** Bytes. */
  memory: number;
  pool: string;
  disk: string;
  seed: string;
  /** Paths on the libvirt host. */
  kernel: string;
  initrd?: string;
  cmdline: string;
  /** Forwards on the libvirt host, SSH's first. */
  forwards: readonly PortForward[];
  /** A second NIC on the Vmfile's private network (network.ts). */
  privateNetwork?: { name: string; mac: string };
}

/** The domain's template, with Handlebars (loaded with it: commands that render nothing never load it). */
export interface DomainTemplate {
  source: string;
  engine: typeof Handlebars;
}

export async function loadDomainTemplate(): Promise<DomainTemplate> {
  // Same relative place from src/driver/libvirt and dist/driver/libvirt.
  const [source, { default: engine }] = await Promise.all([readFile(join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'templates', 'libvirt', 'domain.xml.hbs'), 'utf8'), import('handlebars')]);
  return { source, engine };
}

export function renderDomain(template: DomainTemplate, spec: DomainSpec): string {
  const { engine } = template;
  const handlebars = engine.create();
  handlebars.registerHelper('xml', (value: unknown, options: { loc?: { start?: { line?: number } } }) => {
    if (value === undefined || value === null) throw new InternalError(`domain template refers to a value that is not set (line ${options.loc?.start?.line ?? '?'})`);
    return new engine.SafeString(escapeXml(String(value)));
  });
  return handlebars.compile(template.source, { strict: true, noEscape: true })({
    type: spec.accel === 'kvm' ? 'kvm' : 'qemu',
    kvm: spec.accel === 'kvm',
    tcgCacheMiB: spec.accel === 'kvm' ? false : tcgCacheMiB(spec.memory),
    domain: spec.domain,
    uuid: spec.uuid ?? false,
    machine: spec.machine,
    dir: spec.machineDir,
    memory: spec.memory,
    cpus: spec.cpus,
    pool: spec.pool,
    disk: spec.disk,
    seed: spec.seed,
    kernel: spec.kernel,
    initrd: spec.initrd ?? false,
    cmdline: spec.cmdline,
    privateNetwork: spec.privateNetwork ?? false,
    netdev: ['user', 'id=vmfile-net0', ...spec.forwards.map(hostForward)].join(','),
  });
}

export function escapeXml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * The domain's name on its host: the machine's name and a digest of where it comes from
 * (this host, the machine's directory), so two projects or two workstations sharing a
 * libvirt host never pick the same name, and a retried create finds its own volumes.
 */
export function domainName(hostname: string, machineDir: string, machine: string): string {
  const digest = createHash('sha256').update(`${hostname}\0${machineDir}\0${machine}`).digest('hex').slice(0, 12);
  return `vmfile-${machine}-${digest}`;
}

/** What vmfile reads back from a domain's XML: whose it is, its UUID, and its forwards (SSH's first). */
export function readDomain(xml: string): { dir?: string; uuid?: string; forwards: PortForward[] } {
  const dir = /<vmfile:machine[^>]*\bdir=(['"])([^'"]*)\1/.exec(xml)?.[2];
  const uuid = /<uuid>([0-9a-f-]{36})<\/uuid>/.exec(xml)?.[1];
  const forwards = [...xml.matchAll(/hostfwd=(tcp|udp):([0-9.]+):(\d+)-:(\d+)/g)].map(
    (m): PortForward => ({ protocol: m[1] === 'udp' ? 'udp' : 'tcp', hostIp: m[2] ?? '127.0.0.1', hostPort: Number(m[3]), guestPort: Number(m[4]) }),
  );
  return { ...(dir === undefined ? {} : { dir: unescapeXml(dir) }), ...(uuid === undefined ? {} : { uuid }), forwards };
}

function unescapeXml(value: string): string {
  return value
    .replace(/&#(\d+);/g, (_, code: string) => String.fromCharCode(Number(code)))
    .replace(/&apos;/g, "'")
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

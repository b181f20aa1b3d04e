import { describe, expect, test } from 'vitest';
import { domainName, escapeXml, loadDomainTemplate, readDomain, renderDomain, type DomainSpec } from '../../../../src/driver/libvirt/domain.js';
import { networkName, networkOf, networkXml } from '../../../../src/driver/libvirt/network.js';
import { boxVolumeNames } from '../../../../src/driver/libvirt/storage.js';
import { LibvirtError, LibvirtUnreachableError, virshFailure } from '../../../../src/driver/libvirt/virsh.js';
import { ExternalCommandError } from '../../../../src/errors.js';
import type { InstalledBox } from '../../../../src/box/store.js';

function spec(overrides: Partial<DomainSpec> = {}): DomainSpec {
  return {
    domain: 'vmfile-web-0123456789ab',
    machine: 'web',
    machineDir: '/projects/web/.vmfile/machines/web',
    accel: 'tcg',
    cpus: 2,
    memory: 1024 ** 3,
    pool: 'default',
    disk: 'vmfile-web-0123456789ab.qcow2',
    seed: 'vmfile-web-0123456789ab-seed.iso',
    kernel: '/var/lib/libvirt/images/vmfile-box-aaaa.kernel',
    initrd: '/var/lib/libvirt/images/vmfile-box-aaaa.initrd',
    cmdline: 'root=/dev/vda rw console=ttyS0',
    forwards: [
      { protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 40022, guestPort: 22 },
      { protocol: 'udp', hostIp: '0.0.0.0', hostPort: 5353, guestPort: 53 },
    ],
    ...overrides,
  };
}

describe('renderDomain', () => {
  test('a TCG machine: its shape, its volumes, a capped translation cache, SSH and the forwards on the NIC QEMU adds itself', async () => {
    const xml = renderDomain(await loadDomainTemplate(), spec());
    expect(xml).toContain("<domain type='qemu'");
    expect(xml).toContain('<name>vmfile-web-0123456789ab</name>');
    expect(xml).toContain("<memory unit='b'>1073741824</memory>");
    expect(xml).toContain('<vcpu>2</vcpu>');
    expect(xml).toContain("<tb-cache unit='MiB'>256</tb-cache>");
    expect(xml).not.toContain('host-passthrough');
    expect(xml).toContain("<source pool='default' volume='vmfile-web-0123456789ab.qcow2'/>");
    expect(xml).toContain("<disk type='volume' device='disk' snapshot='no'>");
    expect(xml).toContain('<initrd>/var/lib/libvirt/images/vmfile-box-aaaa.initrd</initrd>');
    expect(xml).toContain("<qemu:arg value='user,id=vmfile-net0,hostfwd=tcp:127.0.0.1:40022-:22,hostfwd=udp:0.0.0.0:5353-:53'/>");
    // No more emulated hardware than the built-in driver gives: no USB, no balloon.
    expect(xml).toContain("<controller type='usb' model='none'/>");
    expect(xml).toContain("<memballoon model='none'/>");
    // A reboot ends the domain, as -no-reboot does under the built-in driver.
    expect(xml).toContain('<on_reboot>destroy</on_reboot>');
  });

  test('KVM passes the host CPU through and has no TCG cache; no initrd, no element', async () => {
    const { initrd: _initrd, ...noInitrd } = spec({ accel: 'kvm' });
    const xml = renderDomain(await loadDomainTemplate(), noInitrd);
    expect(xml).toContain("<domain type='kvm'");
    expect(xml).toContain("<cpu mode='host-passthrough'/>");
    expect(xml).not.toContain('tb-cache');
    expect(xml).not.toContain('<initrd>');
  });

  test('every value is XML-escaped: a directory or command line cannot add elements', async () => {
    const xml = renderDomain(await loadDomainTemplate(), spec({ machineDir: "/x'/><evil/>", cmdline: 'a</cmdline><kernel>/etc/shadow</kernel>' }));
    expect(xml).not.toContain('<evil/>');
    expect(xml).not.toContain('<kernel>/etc/shadow');
    expect(xml).toContain(escapeXml("/x'/><evil/>"));
  });

  test('what vmfile rendered reads back: whose the domain is, its UUID, its forwards in order', async () => {
    const xml = renderDomain(await loadDomainTemplate(), spec({ uuid: '8312bf3f-b94c-46cd-9137-55cfc3153c52', machineDir: "/p/it's here/.vmfile/machines/web" }));
    expect(readDomain(xml)).toEqual({
      dir: "/p/it's here/.vmfile/machines/web",
      uuid: '8312bf3f-b94c-46cd-9137-55cfc3153c52',
      forwards: [
        { protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 40022, guestPort: 22 },
        { protocol: 'udp', hostIp: '0.0.0.0', hostPort: 5353, guestPort: 53 },
      ],
    });
    expect(readDomain('<domain><name>other</name></domain>')).toEqual({ forwards: [] });
  });

  test("a machine on the private network gets a second NIC on the project's libvirt network, with its own MAC", async () => {
    const template = await loadDomainTemplate();
    expect(renderDomain(template, spec())).not.toContain('<interface');
    const xml = renderDomain(template, spec({ privateNetwork: { name: 'vmfile-net-0123456789ab', mac: '52:54:00:12:34:56' } }));
    expect(xml).toContain("<interface type='network'>\n      <source network='vmfile-net-0123456789ab'/>\n      <mac address='52:54:00:12:34:56'/>");
    expect(networkOf(xml)).toBe('vmfile-net-0123456789ab');
    expect(networkOf(renderDomain(template, spec()))).toBeUndefined();
  });

  test('a value the template needs but the caller left out is an error, not an empty string', async () => {
    const template = await loadDomainTemplate();
    expect(() => renderDomain(template, { ...spec(), kernel: undefined as unknown as string })).toThrow(/not set/);
  });
});

describe('names on the libvirt host', () => {
  test('a domain name depends on the workstation, the machine directory and the machine', () => {
    const name = domainName('ws1', '/p/.vmfile/machines/web', 'web');
    expect(name).toMatch(/^vmfile-web-[0-9a-f]{12}$/);
    expect(domainName('ws1', '/p/.vmfile/machines/web', 'web')).toBe(name);
    expect(domainName('ws2', '/p/.vmfile/machines/web', 'web')).not.toBe(name);
    expect(domainName('ws1', '/q/.vmfile/machines/web', 'web')).not.toBe(name);
  });

  test('a private network is named by the workstation and the project, and is isolated: no address, no forwarding', () => {
    const name = networkName('ws1', '/p');
    expect(name).toMatch(/^vmfile-net-[0-9a-f]{12}$/);
    expect(networkName('ws1', '/p')).toBe(name);
    expect(networkName('ws2', '/p')).not.toBe(name);
    expect(networkName('ws1', '/q')).not.toBe(name);
    const xml = networkXml(name);
    expect(xml).toContain(`<name>${name}</name>`);
    expect(xml).not.toMatch(/<forward|<ip|<dns|<dhcp/);
  });

  test("a box's volumes are named by its disk digest, with a marker for a whole upload", () => {
    const box = { metadata: { disk: { sha256: 'ab'.repeat(32) }, boot: { type: 'kernel', kernel: 'kernel', initrd: 'initrd', cmdline: '' } } } as unknown as InstalledBox;
    expect(boxVolumeNames(box)).toEqual({
      disk: 'vmfile-box-abababababababab.qcow2',
      kernel: 'vmfile-box-abababababababab.kernel',
      initrd: 'vmfile-box-abababababababab.initrd',
      marker: 'vmfile-box-abababababababab.complete',
    });
  });
});

describe('virsh failures', () => {
  const host = { uri: 'qemu+ssh://root@lab/system', pool: 'vmfile' };
  const failure = (stderr: string) => virshFailure(host, 'start domain x', new ExternalCommandError('virsh failed', 'virsh', [], stderr));

  test.each([
    ['error: failed to connect to the hypervisor\nerror: Cannot recv data: ssh: connect to host lab port 22: Connection refused', /cannot be reached/],
    ['error: failed to connect to the hypervisor\nerror: authentication failed: access denied', /refused vmfile/],
    ["error: failed to get pool 'vmfile'\nerror: Storage pool not found: no storage pool with matching name 'vmfile'", /has no storage pool "vmfile"/],
  ])('%j names the host and says what to check', (stderr, expected) => {
    const error = failure(stderr);
    expect(error).toBeInstanceOf(LibvirtError);
    expect(error.message).toMatch(expected);
    expect(error.message).toContain('qemu+ssh://root@lab/system');
  });

  test('only a host that does not answer is unreachable (status shows such a machine "unreachable", not "halted")', () => {
    expect(failure('error: failed to connect to the hypervisor\nerror: Cannot recv data: ssh: connect to host lab port 22: Connection refused')).toBeInstanceOf(LibvirtUnreachableError);
    expect(failure('error: failed to connect to the hypervisor\nerror: authentication failed: access denied')).not.toBeInstanceOf(LibvirtUnreachableError);
    expect(failure("error: Storage pool not found: no storage pool with matching name 'vmfile'")).not.toBeInstanceOf(LibvirtUnreachableError);
  });
});

import { describe, expect, test } from 'vitest';
import { escapeOption, hostForward, qemuArgs, tcgCacheMiB, type BootSpec, type LaunchSpec } from '../../../src/qemu/argv.js';

const KERNEL_BOOT: BootSpec = { type: 'kernel', kernel: '/box/kernel', initrd: '/box/initrd', cmdline: 'root=/dev/vda1 console=ttyS0' };

function spec(overrides: Partial<LaunchSpec> = {}): LaunchSpec {
  return {
    name: 'web',
    accel: 'tcg',
    cpus: 2,
    memory: 1024 ** 3,
    boot: KERNEL_BOOT,
    overlay: '/p/.vmfile/machines/web/overlay.qcow2',
    seedDir: '/p/.vmfile/machines/web/seed',
    forwards: [{ protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 2222, guestPort: 22 }],
    qmpSocket: '/p/.vmfile/machines/web/qmp.sock',
    serialLog: '/p/.vmfile/machines/web/serial.log',
    pidFile: '/p/.vmfile/machines/web/qemu.pid',
    ...overrides,
  };
}

/** Values of every occurrence of an option ("-drive" may appear several times). */
function values(args: readonly string[], option: string): string[] {
  return args.flatMap((arg, index) => (arg === option ? [args[index + 1] ?? '<missing>'] : []));
}

describe('qemuArgs', () => {
  test('a warm start waits for its state (-incoming defer) with a VM generation ID; a boot has neither', () => {
    const generation = '7f1c3b0e-0a4e-4d55-9c1b-2f0d6f1e8a11';
    const warm = qemuArgs(spec({ incoming: true, generation }));
    expect(values(warm, '-incoming')).toEqual(['defer']);
    expect(values(warm, '-device')).toContain(`vmgenid,guid=${generation}`);
    const boot = qemuArgs(spec());
    expect(values(boot, '-incoming')).toEqual([]);
    expect(values(boot, '-device').some((device) => device.startsWith('vmgenid'))).toBe(false);
  });

  test("the guest agent's port sits at a fixed PCI slot, after every other device, only when asked for", () => {
    const args = qemuArgs(spec({ agentSocket: '/p,q/qga.sock' }));
    expect(values(args, '-chardev')).toContain('socket,id=qga0,path=/p,,q/qga.sock,server=on,wait=off');
    const devices = values(args, '-device');
    expect(devices.slice(-2)).toEqual(['virtio-serial-pci,id=qga-serial,addr=0x1e', 'virtserialport,bus=qga-serial.0,chardev=qga0,name=org.qemu.guest_agent.0']);
    expect(values(qemuArgs(spec()), '-device').some((device) => device.includes('qga'))).toBe(false);
  });

  test('the gdbstub listens on its Unix socket (commas escaped) only when asked for', () => {
    expect(values(qemuArgs(spec({ incoming: true, gdbSocket: '/p,q/gdb.sock' })), '-gdb')).toEqual(['unix:/p,,q/gdb.sock,server=on,wait=off']);
    expect(values(qemuArgs(spec({ incoming: true })), '-gdb')).toEqual([]);
  });

  test.each([
    ['kvm', ['kvm'], ['host']],
    ['tcg', ['tcg,tb-size=256'], []],
  ] as const)('accel %s (1 GiB): -accel %j, -cpu %j', (accel, accelValue, cpu) => {
    const args = qemuArgs(spec({ accel, memory: 1024 ** 3 }));
    expect(values(args, '-machine')).toEqual(['q35']);
    expect(values(args, '-accel')).toEqual(accelValue);
    expect(values(args, '-cpu')).toEqual(cpu);
  });

  test.each([
    [256, 64],
    [512, 128],
    [1024, 256],
    [8192, 256],
  ])('a %d MiB guest gets a %d MiB translation cache under TCG', (memoryMiB, cache) => {
    expect(tcgCacheMiB(memoryMiB * 1024 ** 2)).toBe(cache);
    expect(values(qemuArgs(spec({ accel: 'tcg', memory: memoryMiB * 1024 ** 2 })), '-accel')).toEqual([`tcg,tb-size=${cache}`]);
  });

  test.each([
    [1024 ** 3, '1024M'],
    [512 * 1024 ** 2, '512M'],
    [1.5 * 1024 ** 3, '1536M'],
    [512 * 1024 ** 2 + 123, '512M'],
    [1, '1M'],
  ])('memory %d bytes is -m %s', (memory, expected) => {
    expect(values(qemuArgs(spec({ memory })), '-m')).toEqual([expected]);
  });

  test('cpus become -smp', () => {
    expect(values(qemuArgs(spec({ cpus: 6 })), '-smp')).toEqual(['6']);
  });

  test('kernel boot passes kernel, initrd and command line', () => {
    const args = qemuArgs(spec());
    expect(values(args, '-kernel')).toEqual(['/box/kernel']);
    expect(values(args, '-initrd')).toEqual(['/box/initrd']);
    expect(values(args, '-append')).toEqual(['root=/dev/vda1 console=ttyS0']);
  });

  test('kernel boot without an initrd has no -initrd', () => {
    const args = qemuArgs(spec({ boot: { type: 'kernel', kernel: '/box/kernel', cmdline: 'quiet' } }));
    expect(values(args, '-kernel')).toEqual(['/box/kernel']);
    expect(args).not.toContain('-initrd');
    expect(values(args, '-append')).toEqual(['quiet']);
  });

  test('BIOS firmware boots from the disk: no -kernel, -initrd, -append or pflash', () => {
    const args = qemuArgs(spec({ boot: { type: 'firmware', firmware: 'bios' } }));
    for (const option of ['-kernel', '-initrd', '-append']) expect(args).not.toContain(option);
    expect(values(args, '-drive').filter((drive) => drive.includes('pflash'))).toEqual([]);
  });

  test('9p shares keep guest owners and modes in xattrs (never security_model=none), read-only when asked', () => {
    const args = qemuArgs(spec({ ninep: [{ tag: 'vmfile0', path: '/src,app', readonly: true }, { tag: 'vmfile1', path: '/data', readonly: false }] }));
    expect(values(args, '-virtfs')).toEqual([
      'local,path=/src,,app,mount_tag=vmfile0,security_model=mapped-xattr,readonly=on',
      'local,path=/data,mount_tag=vmfile1,security_model=mapped-xattr',
    ]);
  });

  test('the overlay and the read-only cidata seed drive are attached, commas doubled in paths', () => {
    const args = qemuArgs(spec({ overlay: '/a,b/overlay.qcow2', seedDir: '/a,b/seed' }));
    expect(values(args, '-drive')).toEqual([
      'file=/a,,b/overlay.qcow2,if=virtio,format=qcow2,discard=unmap',
      'file=fat:/a,,b/seed,file.label=cidata,if=virtio,format=raw,readonly=on',
    ]);
  });

  test('the QMP socket path and the name have their commas doubled', () => {
    const args = qemuArgs(spec({ name: 'a,b', qmpSocket: '/run/x,y/qmp.sock' }));
    expect(values(args, '-qmp')).toEqual(['unix:/run/x,,y/qmp.sock,server=on,wait=off']);
    expect(values(args, '-name')).toEqual(['a,,b,process=vmfile-a,,b']);
  });

  test('host forwards are listed on the user netdev', () => {
    const args = qemuArgs(
      spec({
        forwards: [
          { protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 2222, guestPort: 22 },
          { protocol: 'udp', hostIp: '0.0.0.0', hostPort: 5353, guestPort: 53 },
        ],
      }),
    );
    expect(values(args, '-netdev')).toEqual(['user,id=n0,hostfwd=tcp:127.0.0.1:2222-:22,hostfwd=udp:0.0.0.0:5353-:53']);
    expect(values(args, '-device')).toContain('virtio-net-pci,netdev=n0');
  });

  test('no forwards leave a plain user netdev', () => {
    expect(values(qemuArgs(spec({ forwards: [] })), '-netdev')).toEqual(['user,id=n0']);
  });

  test('QEMU daemonizes with a pid file, exits on guest reboot and has no display', () => {
    const args = qemuArgs(spec());
    expect(args).toContain('-daemonize');
    expect(args).toContain('-no-reboot');
    expect(values(args, '-pidfile')).toEqual(['/p/.vmfile/machines/web/qemu.pid']);
    expect(values(args, '-display')).toEqual(['none']);
    expect(values(args, '-serial')).toEqual(['file:/p/.vmfile/machines/web/serial.log']);
  });

  test('is pure: the same spec gives the same argv', () => {
    expect(qemuArgs(spec())).toEqual(qemuArgs(spec()));
  });
});

describe('escapeOption', () => {
  test.each([
    ['/plain/path', '/plain/path'],
    ['a,b', 'a,,b'],
    [',,', ',,,,'],
    ['', ''],
  ])('%j -> %j', (value, escaped) => {
    expect(escapeOption(value)).toBe(escaped);
  });
});

describe('hostForward', () => {
  test.each([
    [{ protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 2222, guestPort: 22 }, 'hostfwd=tcp:127.0.0.1:2222-:22'],
    [{ protocol: 'udp', hostIp: '0.0.0.0', hostPort: 10053, guestPort: 53 }, 'hostfwd=udp:0.0.0.0:10053-:53'],
  ] as const)('%j -> %s', (forward, text) => {
    expect(hostForward(forward)).toBe(text);
  });
});

describe('qemuArgs for boxes that boot themselves', () => {
  test('BIOS: no kernel options and no firmware drives (SeaBIOS is built in)', () => {
    const args = qemuArgs(spec({ boot: { type: 'firmware', firmware: 'bios' } }));
    expect(args).not.toContain('-kernel');
    expect(values(args, '-drive').some((drive) => drive.includes('pflash'))).toBe(false);
  });

  test("UEFI: OVMF's code read-only, the machine's own qcow2 variable store, both after the disk", () => {
    const args = qemuArgs(spec({ boot: { type: 'firmware', firmware: 'uefi', code: '/usr/share/OVMF/OVMF_CODE_4M.fd', vars: '/p/m,1/efivars.qcow2' } }));
    const drives = values(args, '-drive');
    const code = drives.indexOf('if=pflash,unit=0,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd');
    const vars = drives.indexOf('if=pflash,unit=1,format=qcow2,file=/p/m,,1/efivars.qcow2');
    expect(code).toBeGreaterThan(0);
    expect(vars).toBeGreaterThan(0);
    // savevm puts memory in the first snapshot-capable drive: the overlay, not the variable store.
    expect(drives[0]).toContain('overlay.qcow2');
  });
});

import { describe, expect, test } from 'vitest';
import { hopArgv, hopProxyCommand, tunnelArgv } from '../../../src/ssh/hop.js';
import { parseLibvirtUri } from '../../../src/vmfile/libvirt-uri.js';

describe('reaching a guest on another libvirt host', () => {
  const uri = parseLibvirtUri('qemu+ssh://root@lab.example.org:2222/system?keyfile=/home/me/.ssh/lab&command=/usr/local/bin/ssh-lab');

  test('the URI gives the SSH settings libvirt itself uses', () => {
    expect(uri).toEqual({ local: false, host: 'lab.example.org', user: 'root', port: 2222, keyfile: '/home/me/.ssh/lab', command: '/usr/local/bin/ssh-lab' });
    expect(parseLibvirtUri('qemu:///system')).toEqual({ local: true });
    expect(parseLibvirtUri('qemu+ssh://[::1]/system')).toEqual({ local: false, host: '::1' });
  });

  test('the hop connects its stdio to the forwarded port on that host, never prompting', () => {
    if (uri.local) throw new Error('remote expected');
    expect(hopArgv(uri, 40022)).toEqual([
      '/usr/local/bin/ssh-lab', '-l', 'root', '-p', '2222', '-i', '/home/me/.ssh/lab', '-o', 'BatchMode=yes', '-o', 'ControlMaster=no', '-W', '127.0.0.1:40022', '--', 'lab.example.org',
    ]);
    // As OpenSSH's ProxyCommand every word is one shell word.
    expect(hopProxyCommand({ host: "h'; id #", user: 'me' }, 22)).toBe("ssh -l me -o BatchMode=yes -o ControlMaster=no -W 127.0.0.1:22 -- 'h'\\''; id #'");
  });

  test('the tunnel listens here and leads to the loopback ports there, failing if it cannot bind', () => {
    expect(tunnelArgv({ host: 'lab' }, [{ listen: '127.0.0.1', port: 8080, to: 31000 }, { listen: '0.0.0.0', port: 5432, to: 31001 }])).toEqual([
      'ssh', '-o', 'BatchMode=yes', '-o', 'ControlMaster=no', '-N', '-o', 'ExitOnForwardFailure=yes', '-o', 'ServerAliveInterval=15',
      '-L', '127.0.0.1:8080:127.0.0.1:31000', '-L', '0.0.0.0:5432:127.0.0.1:31001', '--', 'lab',
    ]);
  });
});

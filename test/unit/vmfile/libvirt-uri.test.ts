import { describe, expect, test } from 'vitest';
import { reachUri, recordedUri } from '../../../src/vmfile/libvirt-uri.js';

describe('who says how a libvirt host is reached', () => {
  test.each([
    ['qemu:///system', 'qemu:///system'],
    ['qemu+ssh://root@lab:2222/system', 'qemu+ssh://root@lab:2222/system'],
    ['qemu+ssh://lab/system?keyfile=/home/me/.ssh/a+b', 'qemu+ssh://lab/system?keyfile=/home/me/.ssh/a+b'],
    ['qemu+ssh://lab/system?command=/bin/x&keyfile=/k&netcat=nc&socket=/s&no_verify=1&name=qemu:///system', 'qemu+ssh://lab/system?keyfile=/k'],
    ['qemu+ssh://lab/system?com%6Dand=/bin/x', 'qemu+ssh://lab/system'],
    ['qemu+ssh://lab/system?%zz=1&keyfile=/k', 'qemu+ssh://lab/system?keyfile=/k'],
  ])('a record keeps %s as %s', (uri, kept) => {
    expect(recordedUri(uri)).toBe(kept);
    expect(recordedUri(kept)).toBe(kept);
  });

  test("the Vmfile's options apply to the host it names, and to no other", () => {
    const vmfile = 'qemu+ssh://root@lab/system?keyfile=/k&command=/usr/local/bin/ssh-lab';
    expect(reachUri('qemu+ssh://root@lab/system?keyfile=/k', vmfile)).toBe(vmfile);
    expect(reachUri('qemu+ssh://root@other/system?keyfile=/k', vmfile)).toBe('qemu+ssh://root@other/system?keyfile=/k');
    expect(reachUri('qemu+ssh://root@lab/system?keyfile=/k&command=/tmp/evil', undefined)).toBe('qemu+ssh://root@lab/system?keyfile=/k');
  });
});

import { describe, expect, test } from 'vitest';
import { parseBootIdLocation } from '../../../src/guest/boot-id.js';

/** What BOOT_ID_PROBE printed in a Debian 12 guest (6.1 kernel, KASLR). */
const PROBED = `3223fe17-55fb-4fe4-8183-604d0dfe0f13
ffffffffb9a00000 T _text
ffffffffbbe02830 b sysctl_bootid
  1fc00000-20a01ef1 : Kernel code
  20c00000-21426fff : Kernel rodata
  21600000-21845dff : Kernel data
  21eb1000-223fffff : Kernel bss
`;

describe('parseBootIdLocation', () => {
  test("the ID's physical address is the image's load address plus its offset from _text", () => {
    expect(parseBootIdLocation(PROBED)).toEqual({ address: 0x1fc00000 + 0x2402830, value: '3223fe1755fb4fe48183604d0dfe0f13' });
  });

  test('nothing when the addresses are hidden (an unprivileged read shows zeros)', () => {
    expect(parseBootIdLocation(PROBED.replace('ffffffffb9a00000', '0000000000000000').replace('ffffffffbbe02830', '0000000000000000'))).toBeUndefined();
    expect(parseBootIdLocation(PROBED.replaceAll(/^ {2}[0-9a-f]+-[0-9a-f]+/gm, '  00000000-00000000'))).toBeUndefined();
  });

  test('nothing when a part is missing: the ID, a symbol, the load address', () => {
    expect(parseBootIdLocation(PROBED.split('\n').slice(1).join('\n'))).toBeUndefined();
    expect(parseBootIdLocation(PROBED.replace(' sysctl_bootid', ' other'))).toBeUndefined();
    expect(parseBootIdLocation(PROBED.replace(' _text', ' _stext'))).toBeUndefined();
    expect(parseBootIdLocation(PROBED.replace('Kernel code', 'Kernel cod'))).toBeUndefined();
  });

  test('nothing when the result would fall outside the kernel image\'s data (a guest that lies)', () => {
    // Before _text, and far past the image.
    expect(parseBootIdLocation(PROBED.replace('ffffffffbbe02830 b', 'ffffffffb9000000 b'))).toBeUndefined();
    expect(parseBootIdLocation(PROBED.replace('ffffffffbbe02830 b', 'ffffffffffff0000 b'))).toBeUndefined();
    // In the code, not the data.
    expect(parseBootIdLocation(PROBED.replace('ffffffffbbe02830 b', 'ffffffffb9a01000 b'))).toBeUndefined();
    // The last bytes past the end of bss.
    expect(parseBootIdLocation(PROBED.replace('ffffffffbbe02830 b', 'ffffffffbc1ffff8 b'))).toBeUndefined();
  });
});

import { describe, expect, test } from 'vitest';
import { ConfigError } from '../../../src/errors.js';
import { machineBoot } from '../../../src/vmfile/boot.js';

const kernelBox = { name: 'debian-12', boot: { type: 'kernel' as const, kernel: 'kernel', cmdline: 'root=/dev/vda' } };
const hybrid = { name: 'cloud', boot: { type: 'firmware' as const, firmware: 'uefi' as const, supports: ['uefi' as const, 'bios' as const] } };
const biosOnly = { name: 'old', boot: { type: 'firmware' as const, firmware: 'bios' as const } };

describe('machineBoot', () => {
  test("the box's default unless the Vmfile chooses one it supports", () => {
    expect(machineBoot('web', undefined, kernelBox)).toBe('kernel');
    expect(machineBoot('web', undefined, hybrid)).toBe('uefi');
    expect(machineBoot('web', 'bios', hybrid)).toBe('bios');
    expect(machineBoot('web', 'bios', biosOnly)).toBe('bios');
  });

  test('a firmware the box cannot boot is a configuration error naming machine, box and choice', () => {
    expect(() => machineBoot('web', 'uefi', biosOnly)).toThrow(ConfigError);
    expect(() => machineBoot('web', 'uefi', biosOnly)).toThrow('machine "web": firmware "uefi" is set, but box old boots only with bios');
    expect(() => machineBoot('web', 'bios', kernelBox)).toThrow('box debian-12 boots its kernel directly');
  });
});

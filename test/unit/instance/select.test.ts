import { describe, expect, test } from 'vitest';
import { UserError } from '../../../src/errors.js';
import { selectOne } from '../../../src/instance/select.js';
import { parseVmfile } from '../../../src/vmfile/config.js';

const multi = (primary: boolean) =>
  parseVmfile({ defaults: { box: 'debian-12' }, machines: { web: { primary }, db: {} } }, '/p/Vmfile.ts', '/p');

describe('selectOne', () => {
  test('several machines and no name: refused with the names, never the first one silently', () => {
    const call = () => selectOne(multi(false), undefined, { command: 'vmfile snapshot list -m MACHINE', usePrimary: false });
    expect(call).toThrow(UserError);
    expect(call).toThrow('this Vmfile defines 2 machines; say which one: web, db');
  });

  test('the primary is used only where the command allows it (vmssh)', () => {
    expect(selectOne(multi(true), undefined, { command: 'vmssh MACHINE', usePrimary: true }).name).toBe('web');
    expect(() => selectOne(multi(true), undefined, { command: 'vmfile package MACHINE', usePrimary: false })).toThrow('say which one');
  });

  test('a name picks that machine; an unknown one lists the real ones; a single machine needs no name', () => {
    expect(selectOne(multi(false), 'db', { command: 'x', usePrimary: false }).name).toBe('db');
    expect(() => selectOne(multi(false), 'nope', { command: 'x', usePrimary: false })).toThrow('no machine named "nope"');
    const single = parseVmfile({ box: 'debian-12' }, '/p/Vmfile.ts', '/p');
    expect(selectOne(single, undefined, { command: 'x', usePrimary: false }).name).toBe('default');
  });
});

import { describe, expect, test } from 'vitest';
import {
  BusyError,
  ConfigError,
  describeFailure,
  ExternalCommandError,
  GuestError,
  InternalError,
  lastLines,
  UserError,
  VmfileError,
} from '../../src/errors.js';

describe('describeFailure', () => {
  test.each<[string, VmfileError, number]>([
    ['VmfileError', new VmfileError('x'), 1],
    ['UserError', new UserError('x'), 1],
    ['ConfigError', new ConfigError('x'), 78],
    ['ExternalCommandError', new ExternalCommandError('x', 'qemu-img', [], ''), 1],
    ['GuestError', new GuestError('x'), 1],
    ['GuestError with a code', new GuestError('x', { exitCode: 42 }), 42],
    ['BusyError', new BusyError('x'), 75],
    ['InternalError', new InternalError('x'), 70],
  ])('%s exits with %d', (_label, error, exitCode) => {
    expect(describeFailure(error, false)).toEqual({ text: 'error: x', exitCode });
  });

  test('the hint follows the message', () => {
    expect(describeFailure(new UserError('box debian is not installed', { hint: 'see: vmfile box list' }), false)).toEqual({
      text: 'error: box debian is not installed\nhint: see: vmfile box list',
      exitCode: 1,
    });
  });

  test('a config error keeps its multi-line message and exit code 78', () => {
    const error = new ConfigError('Vmfile.ts is invalid:\n  - cpus: a machine needs at least 1 CPU', { hint: 'fix it' });
    expect(describeFailure(error, false)).toEqual({
      text: 'error: Vmfile.ts is invalid:\n  - cpus: a machine needs at least 1 CPU\nhint: fix it',
      exitCode: 78,
    });
  });

  test('an external command failure shows the last 15 lines of stderr, indented, before the hint', () => {
    const stderr = `${Array.from({ length: 20 }, (_, i) => `line ${i + 1}`).join('\n')}\n\n`;
    const error = new ExternalCommandError('create overlay: qemu-img exit code 1', 'qemu-img', ['create'], stderr, { hint: 'check the disk' });

    const { text, exitCode } = describeFailure(error, false);

    const expectedTail = Array.from({ length: 15 }, (_, i) => `  | line ${i + 6}`).join('\n');
    expect(text).toBe(`error: create overlay: qemu-img exit code 1\n${expectedTail}\nhint: check the disk`);
    expect(exitCode).toBe(1);
  });

  test('stderr already quoted in the message is not repeated', () => {
    const error = new ExternalCommandError('qemu-img failed: no space left', 'qemu-img', [], 'no space left\n');
    expect(describeFailure(error, false).text).toBe('error: qemu-img failed: no space left');
  });

  test('blank stderr adds nothing', () => {
    expect(describeFailure(new ExternalCommandError('tar failed', 'tar', [], '  \n'), false).text).toBe('error: tar failed');
  });

  test('debug adds the stack', () => {
    const error = new UserError('nope', { hint: 'h' });
    const { text } = describeFailure(error, true);
    expect(text.startsWith('error: nope\nhint: h\nUserError: nope\n')).toBe(true);
  });

  test('an unknown error is a bug: exit 70, with a hint to rerun with --debug', () => {
    expect(describeFailure(new TypeError('cannot read x of undefined'), false)).toEqual({
      text: 'error: internal error in vmfile (this is a bug): cannot read x of undefined\nhint: run again with --debug for the stack trace',
      exitCode: 70,
    });
  });

  test('a thrown non-Error is described too', () => {
    expect(describeFailure('just a string', false)).toEqual({
      text: 'error: internal error in vmfile (this is a bug): just a string\nhint: run again with --debug for the stack trace',
      exitCode: 70,
    });
  });

  test('an unknown error with debug shows its stack instead of the hint', () => {
    const { text, exitCode } = describeFailure(new RangeError('bad'), true);
    expect(exitCode).toBe(70);
    expect(text).toMatch(/^error: internal error in vmfile \(this is a bug\): bad\nRangeError: bad\n {4}at /);
    expect(text).not.toContain('hint:');
  });
});

describe('error classes', () => {
  test('name, hint and cause are kept', () => {
    const cause = new Error('root');
    const error = new ConfigError('bad', { hint: 'fix', cause });
    expect([error.name, error.message, error.hint, error.cause]).toEqual(['ConfigError', 'bad', 'fix', cause]);
    expect(error).toBeInstanceOf(VmfileError);
  });

  test('an external command error keeps the command, its arguments and stderr', () => {
    const error = new ExternalCommandError('failed', 'qemu-img', ['info', 'x'], 'oops');
    expect([error.command, error.args, error.stderr]).toEqual(['qemu-img', ['info', 'x'], 'oops']);
  });
});

describe('lastLines', () => {
  test.each([
    ['a\nb\nc', 2, 'b\nc'],
    ['a\nb\nc\n\n', 2, 'b\nc'],
    ['a', 5, 'a'],
    ['', 3, ''],
  ])('%j, %d -> %j', (text, count, expected) => {
    expect(lastLines(text, count)).toBe(expected);
  });
});

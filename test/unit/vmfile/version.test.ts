import { describe, expect, test } from 'vitest';
import { compareVersions, formatConstraints, isExactVersion, parseVersionConstraints, satisfies } from '../../../src/vmfile/version.js';

describe('compareVersions', () => {
  test.each([
    ['2026.11.2', '2026.11.10', -1],
    ['2026.11.10', '2026.11.2', 1],
    ['2026.9.30', '2026.11.1', -1],
    ['1.0', '1.0', 0],
    ['1.9', '1.10', -1],
    // As RubyGems and Vagrant order them: a pre-release (letters, or "-") before its release.
    ['2.0-rc1', '2.0', -1],
    ['2.0.rc1', '2.0', -1],
    ['2.0.beta', '2.0.rc1', -1],
    ['2.0-rc1', '2.0-rc2', -1],
    ['2.0-rc2', '2.0-rc10', -1],
    ['2.0-rc1', '1.9', 1],
    ['2.0a', '2.0', -1],
    ['1.0', '1.0.1', -1],
    // Only one string is equal to itself: 1.2 and 1.02 are two versions, in a fixed order.
    ['1.2', '1.02', 1],
    ['1.0', '1', 1],
  ])('%s vs %s -> %d', (a, b, sign) => {
    // + 0: a sign of -0 is 0 here.
    expect(Math.sign(compareVersions(a, b)) + 0).toBe(sign);
    expect(Math.sign(compareVersions(b, a)) + 0).toBe(-sign + 0);
  });

  test('a sort puts releases after their pre-releases', () => {
    expect(['2.0', '2.0-rc1', '1.10', '2.0.beta', '1.9', '10.0'].sort(compareVersions)).toEqual(['1.9', '1.10', '2.0.beta', '2.0-rc1', '2.0', '10.0']);
  });
});

describe('parseVersionConstraints', () => {
  test.each([
    ['1.2', [{ operator: '=', version: '1.2' }]],
    ['= 1.2', [{ operator: '=', version: '1.2' }]],
    ['>=1.2', [{ operator: '>=', version: '1.2' }]],
    [
      '>= 1.2, < 2',
      [
        { operator: '>=', version: '1.2' },
        { operator: '<', version: '2' },
      ],
    ],
    ['~> 1.2', [{ operator: '~>', version: '1.2' }]],
    ['!= 1.3', [{ operator: '!=', version: '1.3' }]],
    ['  <= 2026.11.1  ', [{ operator: '<=', version: '2026.11.1' }]],
  ])('%j', (text, constraints) => {
    expect(parseVersionConstraints(text)).toEqual(constraints);
  });

  test.each([[''], ['>='], ['>= 1.2,'], ['=> 1.2'], ['>= ../x'], ['1.2 || 2'], ['>= 1 2'], ['*']])('%j is not a constraint', (text) => {
    expect(parseVersionConstraints(text)).toBeUndefined();
  });

  test('an exact version is one version, a range is not', () => {
    expect(isExactVersion('2026.11.1')).toBe(true);
    expect(isExactVersion('>= 1')).toBe(false);
    expect(formatConstraints(parseVersionConstraints('>=1,<2') ?? [])).toBe('>= 1, < 2');
  });
});

describe('satisfies', () => {
  test.each([
    ['1.2', '= 1.2', true],
    ['1.2.1', '1.2', false],
    ['1.2', '>= 1.2', true],
    ['1.10', '>= 1.9', true],
    ['1.1', '>= 1.2', false],
    ['1.5', '>= 1.2, < 2', true],
    ['2.0', '>= 1.2, < 2', false],
    ['1.3', '!= 1.3', false],
    ['1.4', '> 1.3', true],
    ['1.3', '> 1.3', false],
    ['1.3', '<= 1.3', true],
    // ~> 1.2 is >= 1.2, < 2; ~> 1.2.3 is >= 1.2.3, < 1.3
    ['1.9', '~> 1.2', true],
    ['2.0', '~> 1.2', false],
    ['1.1', '~> 1.2', false],
    ['1.2.9', '~> 1.2.3', true],
    ['1.3.0', '~> 1.2.3', false],
    ['1.2.2', '~> 1.2.3', false],
    ['3', '~> 2', false],
    ['2.5', '~> 2', true],
    // Exact on the string.
    ['1.02', '= 1.2', false],
    ['1.02', '1.2', false],
    ['1.2', '!= 1.02', true],
    ['1.0', '= 1', false],
    // Pre-releases.
    ['2.0-rc1', '< 2.0', true],
    ['2.0-rc1', '>= 2.0', false],
    ['2.0', '> 2.0-rc1', true],
    ['2.0-rc1', '~> 1.2', true],
    ['1.3.0', '~> 1.2.3-rc1', false],
  ])('%s meets %j: %s', (version, text, expected) => {
    expect(satisfies(version, parseVersionConstraints(text) ?? [])).toBe(expected);
  });
});

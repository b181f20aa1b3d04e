/**
 * Box versions: their order, and Vagrant-style constraints (">= 1.2, < 2", "~> 1.2")
 * that a Vmfile may give instead of one exact version. Pure, tested with tables.
 */
import { BOX_VERSION_PATTERN } from './box-metadata.js';

/**
 * The order of box versions, as RubyGems (and so Vagrant) orders them: numbers compare as
 * numbers (2026.11.2 < 2026.11.10), and a version with letters is a pre-release, older
 * than its release (2.0.beta < 2.0-rc1 < 2.0; "-" reads as ".pre."). Where RubyGems calls
 * two different strings equal (1.2 and 1.02, 1.0 and 1) they are still two versions, put
 * in a fixed order by their text: only a string equals itself, so "= 1.2" never picks
 * 1.02. "+" and what follows is build metadata, as in semver, and not ordered.
 */
export function compareVersions(a: string, b: string): number {
  const left = segments(a);
  const right = segments(b);
  for (let i = 0; i < Math.max(left.length, right.length); i++) {
    const l = left[i] ?? 0n;
    const r = right[i] ?? 0n;
    if (l === r) continue;
    // A letter segment is a pre-release marker: below any number in its place.
    if (typeof l !== typeof r) return typeof l === 'string' ? -1 : 1;
    return l < r ? -1 : 1;
  }
  return a === b ? 0 : a < b ? -1 : 1;
}

type Segment = bigint | string;

/** RubyGems' canonical segments: numbers and letter runs, trailing zeros of the release and of the pre-release part dropped. */
function segments(version: string): Segment[] {
  const parts = rawSegments(version);
  const firstLetters = parts.findIndex((part) => typeof part === 'string');
  const release = firstLetters < 0 ? parts : parts.slice(0, firstLetters);
  const pre = firstLetters < 0 ? [] : parts.slice(firstLetters);
  return [...withoutTrailingZeros(release), ...withoutTrailingZeros(pre)];
}

function rawSegments(version: string): Segment[] {
  const [release = ''] = version.split('+');
  return (release.replaceAll('-', '.pre.').match(/[0-9]+|[a-z]+/gi) ?? []).map((part) => (/^[0-9]/.test(part) ? BigInt(part) : part));
}

function withoutTrailingZeros(parts: Segment[]): Segment[] {
  let end = parts.length;
  while (end > 0 && parts[end - 1] === 0n) end--;
  return parts.slice(0, end);
}

export type ConstraintOperator = '=' | '!=' | '>' | '>=' | '<' | '<=' | '~>';

export interface VersionConstraint {
  operator: ConstraintOperator;
  version: string;
}

const CONSTRAINT = /^(=|!=|>=|<=|>|<|~>)?\s*(\S+)$/;

/** How a constraint is written, for messages. */
export const CONSTRAINT_RULE = 'a version like "2026.11.1", or constraints like ">= 1.2", "< 2", "~> 1.2", "!= 1.3" separated by commas';

/**
 * "1.2" (exactly), ">= 1.2, < 2": every comma-separated part must hold. Undefined when
 * the text is not a constraint list.
 */
export function parseVersionConstraints(text: string): VersionConstraint[] | undefined {
  const parts = text.split(',').map((part) => part.trim());
  const constraints: VersionConstraint[] = [];
  for (const part of parts) {
    const match = CONSTRAINT.exec(part);
    const version = match?.[2];
    if (match === null || version === undefined || !BOX_VERSION_PATTERN.test(version)) return undefined;
    constraints.push({ operator: (match[1] as ConstraintOperator | undefined) ?? '=', version });
  }
  return constraints;
}

/** ">= 1.2, < 2" */
export function formatConstraints(constraints: readonly VersionConstraint[]): string {
  return constraints.map(({ operator, version }) => `${operator} ${version}`).join(', ');
}

/** Whether the text names one version rather than a range. */
export function isExactVersion(text: string): boolean {
  return BOX_VERSION_PATTERN.test(text);
}

export function satisfies(version: string, constraints: readonly VersionConstraint[]): boolean {
  return constraints.every(({ operator, version: bound }) => {
    const order = compareVersions(version, bound);
    switch (operator) {
      case '=':
        return order === 0;
      case '!=':
        return order !== 0;
      case '>':
        return order > 0;
      case '>=':
        return order >= 0;
      case '<':
        return order < 0;
      case '<=':
        return order <= 0;
      case '~>':
        // As in RubyGems and Vagrant: "~> 1.2" is ">= 1.2, < 2", "~> 1.2.3" is ">= 1.2.3, < 1.3".
        return order >= 0 && compareVersions(version, pessimisticBound(bound)) < 0;
    }
  });
}

/** RubyGems' bump: the pre-release part dropped, then the last number, and the one before it counted up. */
function pessimisticBound(version: string): string {
  const parts = rawSegments(version);
  const firstLetters = parts.findIndex((part) => typeof part === 'string');
  const numbers = (firstLetters < 0 ? parts : parts.slice(0, firstLetters)) as bigint[];
  const kept = numbers.slice(0, Math.max(1, numbers.length - 1));
  kept[kept.length - 1] = (kept.at(-1) ?? 0n) + 1n;
  return kept.join('.');
}

/**
 * Box versions: their order, and Vagrant-style constraints (">= 1.2, < 2", "~> 1.2")
 * that a Vmfile may give instead of one exact version. Pure, tested with tables.
 */
import { BOX_VERSION_PATTERN } from './box-metadata.js';

/** Numeric-aware ordering: 2026.11.2 < 2026.11.10. */
export function compareVersions(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
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

function pessimisticBound(version: string): string {
  const numbers = version.split('.').map((segment) => Number.parseInt(segment, 10) || 0);
  const kept = numbers.slice(0, Math.max(1, numbers.length - 1));
  kept[kept.length - 1] = (kept.at(-1) ?? 0) + 1;
  return kept.join('.');
}

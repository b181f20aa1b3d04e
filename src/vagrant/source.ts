/**
 * TypeScript source of a Vmfile, written from a small tree of values with comments
 * attached where they belong (a comment-only entry stands where a Vagrant setting that
 * did not convert would have gone). Pure: the tree in, the text out.
 */

export type Node =
  | { kind: 'value'; value: string | number | boolean | null }
  | { kind: 'object'; entries: Entry[] }
  | { kind: 'array'; items: Entry[] };

/** A key and value (in an object), a value (in an array), or only comments; comments come first. */
export interface Entry {
  key?: string;
  value?: Node;
  comments: string[];
}

export const value = (v: string | number | boolean | null): Node => ({ kind: 'value', value: v });
export const object = (entries: Entry[]): Node => ({ kind: 'object', entries });
export const array = (items: Entry[]): Node => ({ kind: 'array', items });
export const entry = (key: string | undefined, node: Node, comments: string[] = []): Entry => ({ ...(key === undefined ? {} : { key }), value: node, comments });
export const note = (...comments: string[]): Entry => ({ comments });

/** Plain data of a node: what defineVm receives when the source runs (comments gone). */
export function plain(node: Node): unknown {
  if (node.kind === 'value') return node.value;
  if (node.kind === 'array') return node.items.flatMap((item) => (item.value === undefined ? [] : [plain(item.value)]));
  return Object.fromEntries(node.entries.flatMap((item) => (item.key === undefined || item.value === undefined ? [] : [[item.key, plain(item.value)]])));
}

/** The node's source at `indent` (its first line is not indented: it follows a key). */
export function render(node: Node, indent = ''): string {
  if (node.kind === 'value') return literal(node.value);
  const [open, close, list] = node.kind === 'object' ? ['{', '}', node.entries] : ['[', ']', node.items];
  if (list.length === 0) return `${open}${close}`;
  const inner = `${indent}  `;
  const parts = list.map((item) => ({
    comments: item.comments.flatMap((text) => commentLines(text, inner)),
    code: item.value === undefined ? undefined : `${item.key === undefined ? '' : `${propertyKey(item.key)}: `}${render(item.value, inner)}`,
  }));
  const oneLine = parts.every((part) => part.comments.length === 0 && part.code !== undefined && !part.code.includes('\n'));
  if (oneLine) {
    const text = parts.map((part) => part.code).join(', ');
    if (text.length + indent.length < 100) return node.kind === 'object' ? `{ ${text} }` : `[${text}]`;
  }
  const lines = parts.flatMap((part) => [...part.comments, ...(part.code === undefined ? [] : [`${inner}${part.code},`])]);
  return `${open}\n${lines.join('\n')}\n${indent}${close}`;
}

/** `// ` lines: any line break in the text (which may come from the Vagrantfile) starts a new comment line. */
export function commentLines(text: string, indent = ''): string[] {
  return text.split(/\r\n|[\n\r\u2028\u2029]/).map((line) => `${indent}// ${line.replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '?')}`.trimEnd());
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

function propertyKey(key: string): string {
  return IDENTIFIER.test(key) ? key : quote(key);
}

function literal(v: string | number | boolean | null): string {
  if (typeof v !== 'string') return String(v);
  return v.includes('\n') ? template(v) : quote(v);
}

/** A single-quoted string literal for any text. */
export function quote(text: string): string {
  return `'${escapeControl(text.replace(/\\/g, '\\\\').replace(/'/g, "\\'"))}'`;
}

/** A template literal, for multi-line scripts: they read as they do in the Vagrantfile. */
function template(text: string): string {
  const body = text.replace(/\\/g, '\\\\').replace(/`/g, '\\`').replace(/\$\{/g, '\\${');
  return `\`${escapeControl(body, true)}\``;
}

function escapeControl(text: string, keepNewlines = false): string {
  return text.replace(/[\x00-\x1f\x7f\u2028\u2029]/g, (c) => {
    if (c === '\n') return keepNewlines ? '\n' : '\\n';
    if (c === '\t') return keepNewlines ? '\t' : '\\t';
    return `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
  });
}

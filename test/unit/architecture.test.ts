/**
 * The layering of docs/design.md, checked on the source: every import between folders
 * of src/ goes down the list, so there are no folder-level cycles; no service imports
 * another service; only the driver talks to QEMU and QMP; the Vmfile layer does no I/O.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, test } from 'vitest';

const src = resolve(import.meta.dirname, '..', '..', 'src');

/** Lowest first. A folder may import its own files and folders of a lower rank only. */
const LAYERS: readonly (readonly string[])[] = [
  ['errors.ts'],
  ['exec.ts'],
  ['vmfile'],
  ['ui'],
  ['store'],
  ['project', 'ssh', 'qemu', 'qmp'],
  ['box'],
  ['network', 'folders', 'cloudinit', 'provision', 'vagrant', 'sbom'],
  ['driver', 'study'],
  ['instance'],
  ['guest'],
  ['lifecycle'],
  ['services'],
  ['cli'],
  ['commands'],
  ['index.ts'],
];

const rank = new Map(LAYERS.flatMap((layer, index) => layer.map((unit) => [unit, index] as const)));

function isAboveDriver(path: string): boolean {
  return (rank.get(unitOf(path)) ?? -1) > (rank.get('driver') ?? Infinity);
}

/** A test of which provider (driver) a machine has: `provider.type`, `provider?.type`, `.provider === ...`. */
const PROVIDER_TEST = /\bprovider\??\.type\b|\.provider\s*[!=]==|\bprovider\s*[!=]==/;

interface Edge {
  from: string;
  to: string;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** Static and dynamic imports of project files, as paths relative to src/ (.ts). */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specifiers = [...text.matchAll(/(?:from\s+|import\s*\(\s*)'(\.{1,2}\/[^']+)'/g)].map((match) => match[1] ?? '');
  return specifiers.map((specifier) => relative(src, resolve(dirname(file), specifier)).replace(/\.js$/, '.ts'));
}

/** The unit a file belongs to: its top folder under src/, or the file itself at the top. */
function unitOf(path: string): string {
  return path.split('/')[0] ?? '';
}

const edges: Edge[] = sourceFiles(src).flatMap((file) => importsOf(file).map((to) => ({ from: relative(src, file), to })));

describe('architecture', () => {
  test('every folder and top-level file of src/ has a layer', () => {
    const units = new Set(sourceFiles(src).map((file) => unitOf(relative(src, file))));
    expect([...units].filter((unit) => !rank.has(unit))).toEqual([]);
  });

  test('imports between folders only go down the layers (so no folder-level cycles)', () => {
    const upward = edges.filter(({ from, to }) => {
      const a = unitOf(from);
      const b = unitOf(to);
      return a !== b && (rank.get(a) ?? -1) <= (rank.get(b) ?? -1);
    });
    expect(upward.map(({ from, to }) => `${from} -> ${to}`)).toEqual([]);
  });

  test('no service imports another service', () => {
    const crossing = edges.filter(({ from, to }) => from.startsWith('services/') && to.startsWith('services/'));
    expect(crossing.map(({ from, to }) => `${from} -> ${to}`)).toEqual([]);
  });

  test('only the driver (and the box layer, for image conversion) reaches QEMU and QMP', () => {
    const allowed = new Set(['driver', 'qemu', 'qmp', 'box']);
    const direct = edges.filter(({ from, to }) => /^(qemu|qmp)\//.test(to) && !allowed.has(unitOf(from)));
    expect(direct.map(({ from, to }) => `${from} -> ${to}`)).toEqual([]);
  });

  test('the Vmfile layer is pure: no file system, processes or network', () => {
    const impure = sourceFiles(join(src, 'vmfile')).filter((file) => /from\s+'(node:(fs|fs\/promises|child_process|net|dgram)|execa|ssh2)'/.test(readFileSync(file, 'utf8')));
    expect(impure.map((file) => relative(src, file))).toEqual([]);
  });

  test('above driver/, nothing reaches into a driver: only the contract, the features and the factory (driver/registry.ts)', () => {
    const into = edges.filter(({ from, to }) => isAboveDriver(from) && /^driver\/(qemu|libvirt)\//.test(to));
    expect(into.map(({ from, to }) => `${from} -> ${to}`)).toEqual([]);
  });

  test('above driver/, nothing asks which driver a machine has: it asks the driver\'s features', () => {
    const asking = sourceFiles(src)
      .filter((file) => isAboveDriver(relative(src, file)))
      .flatMap((file) => readFileSync(file, 'utf8').split('\n').map((line, index) => ({ file: relative(src, file), line, number: index + 1 })))
      .filter(({ line }) => PROVIDER_TEST.test(line));
    expect(asking.map(({ file, number, line }) => `${file}:${number}: ${line.trim()}`)).toEqual([]);
  });

  test('no file imports itself round a circle, type imports included: each module can be read knowing only those below it', () => {
    const next = new Map<string, string[]>();
    for (const { from, to } of edges) next.set(from, [...(next.get(from) ?? []), to]);
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const path: string[] = [];
    const visit = (file: string): void => {
      state.set(file, 'open');
      path.push(file);
      for (const to of next.get(file) ?? []) {
        if (state.get(to) === 'open') cycles.push([...path.slice(path.indexOf(to)), to].join(' -> '));
        else if (!state.has(to)) visit(to);
      }
      path.pop();
      state.set(file, 'done');
    };
    for (const file of next.keys()) if (!state.has(file)) visit(file);
    expect(cycles).toEqual([]);
  });

  test('no source file is over 300 lines: a file that grows past it holds two concepts', () => {
    const long = sourceFiles(src).map((file) => ({ file: relative(src, file), lines: readFileSync(file, 'utf8').split('\n').length - 1 })).filter(({ lines }) => lines > 300);
    expect(long.map(({ file, lines }) => `${file}: ${lines} lines`)).toEqual([]);
  });

  test('the checker sees real imports (it would catch an upward one), and the provider pattern catches what it names', () => {
    expect(edges.some(({ from, to }) => from === 'services/up.ts' && to === 'lifecycle/up.ts')).toBe(true);
    expect(edges.some(({ from, to }) => from.startsWith('commands/') && to.startsWith('services/'))).toBe(true);
    expect(edges.some(({ from, to }) => from === 'driver/registry.ts' && to === 'driver/libvirt/driver.ts')).toBe(true);
    for (const line of ["if (machine.provider.type === 'libvirt')", 'state.provider?.type', 'if (state.provider !== undefined) return', "provider === 'qemu'"]) expect(PROVIDER_TEST.test(line)).toBe(true);
    for (const line of ['driver.features.warmStart', 'providerLabel(state.provider)', '{ wanted: machine.provider }']) expect(PROVIDER_TEST.test(line)).toBe(false);
  });
});

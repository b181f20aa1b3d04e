/**
 * The SBOM writers against the formats' own checkers: SPDX 2.3 documents against the
 * SPDX project's published JSON schema (test/fixtures/schemas, checked by digest first)
 * with Ajv, CycloneDX 1.6 BOMs with the CycloneDX project's own library. Each checker
 * is first shown to refuse a broken document, so that a pass means something.
 */
import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, test } from 'vitest';
import { cyclonedxValidator, spdxValidator } from '../../fixtures/schemas/validate.js';
import { cyclonedxDocument } from '../../../src/sbom/cyclonedx.js';
import { creationTime, purl, type Inventory } from '../../../src/sbom/inventory.js';
import { spdxDocument } from '../../../src/sbom/spdx.js';


const SHA = (seed: string) => createHash('sha256').update(seed).digest('hex');

const inventory: Inventory = {
  project: 'study',
  tool: { name: 'vmfile', version: '0.1.0' },
  created: '2026-12-07T10:00:00Z',
  machines: [
    {
      name: 'default',
      box: { name: 'debian-12', version: '2026.12.07', sha256: SHA('disk'), architecture: 'x86_64' },
      suite: 'bookworm',
      packages: [
        { name: 'libc6', version: '2.36-9+deb12u9', architecture: 'amd64', source: 'glibc', sha256: SHA('libc6'), layer: 'box debian-12 2026.12.07' },
        { name: 'perl-base', version: '5.36.0-7+deb12u1', architecture: 'amd64', source: 'perl', sha256: SHA('perl'), layer: 'box debian-12 2026.12.07' },
        { name: 'tzdata', version: '2024a-0+deb12u1', architecture: 'all', sha256: SHA('tzdata'), layer: 'box debian-12 2026.12.07' },
        { name: 'dpkg', version: '1:1.21.22', architecture: 'amd64', sha256: SHA('dpkg'), layer: 'box debian-12 2026.12.07' },
        { name: 'r-base-core', version: '4.2.2.20221110-2', architecture: 'amd64', source: 'r-base', sha256: SHA('r'), layer: 'step "install R"' },
      ],
    },
    {
      name: 'worker-1',
      box: { name: 'packaged', version: '1.0', sha256: SHA('other disk'), architecture: 'x86_64' },
      // A packaged machine's box lists names and versions only.
      packages: [{ name: 'libc6', version: '2.36-9+deb12u9', layer: 'box packaged 1.0' }],
    },
  ],
};

describe('SPDX 2.3', () => {
  let validate: (document: unknown) => string[];

  beforeAll(async () => {
    validate = await spdxValidator();
  });

  test('the schema refuses a document without its required fields', () => {
    const broken = spdxDocument(inventory) as Record<string, unknown>;
    delete broken['spdxVersion'];
    expect(validate(broken)).not.toEqual([]);
    expect(validate({ ...spdxDocument(inventory), packages: [{ SPDXID: 'SPDXRef-x', name: 'x' }] })).not.toEqual([]);
  });

  test('accepts what vmfile writes: each machine described, each package contained, with digest, purl, source and layer', () => {
    const document = spdxDocument(inventory) as { packages: Record<string, unknown>[]; relationships: Record<string, string>[]; documentNamespace: string };
    expect(validate(document)).toEqual([]);
    const ids = document.packages.map((pkg) => pkg['SPDXID']);
    expect(new Set(ids).size).toBe(ids.length);
    expect(document.relationships.filter((rel) => rel['relationshipType'] === 'DESCRIBES').map((rel) => rel['relatedSpdxElement'])).toEqual(['SPDXRef-Machine-default', 'SPDXRef-Machine-worker-1']);
    expect(document.relationships.filter((rel) => rel['relationshipType'] === 'CONTAINS')).toHaveLength(6);
    const r = document.packages.find((pkg) => pkg['name'] === 'r-base-core');
    expect(r).toMatchObject({
      versionInfo: '4.2.2.20221110-2',
      checksums: [{ algorithm: 'SHA256', checksumValue: SHA('r') }],
      sourceInfo: 'built from the Debian source package r-base',
      comment: 'brought by the step "install R"',
      externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: 'pkg:deb/debian/r-base-core@4.2.2.20221110-2?arch=amd64&distro=bookworm' }],
    });
    expect(document.packages.find((pkg) => pkg['SPDXID'] === 'SPDXRef-Machine-default')).toMatchObject({ checksums: [{ algorithm: 'SHA256', checksumValue: SHA('disk') }], primaryPackagePurpose: 'OPERATING_SYSTEM' });
  });

  test('the same inventory gives the same document; another package, another namespace', () => {
    expect(JSON.stringify(spdxDocument(inventory))).toBe(JSON.stringify(spdxDocument(structuredClone(inventory))));
    const changed = structuredClone(inventory);
    changed.machines[0]?.packages.pop();
    expect((spdxDocument(changed) as { documentNamespace: string }).documentNamespace).not.toBe((spdxDocument(inventory) as { documentNamespace: string }).documentNamespace);
  });
});

describe('CycloneDX 1.6', () => {
  const validate = cyclonedxValidator();

  test("the CycloneDX library refuses a BOM with a bad hash", async () => {
    const broken = cyclonedxDocument(inventory) as { components: { hashes: { content: string }[] }[] };
    (broken.components[0] as { hashes: { content: string }[] }).hashes[0] = { content: 'not hex' } as never;
    expect(await validate(JSON.stringify(broken))).not.toEqual([]);
  });

  test('accepts what vmfile writes: machines as operating systems holding their packages, each with purl, SHA-256 and layer', async () => {
    const bom = cyclonedxDocument(inventory) as { components: { name: string; components: Record<string, unknown>[] }[]; dependencies: { ref: string; dependsOn: string[] }[] };
    expect(await validate(JSON.stringify(bom))).toEqual([]);
    const machine = bom.components.find((component) => component.name === 'default');
    expect(machine?.components).toHaveLength(5);
    expect(machine?.components.find((component) => component['name'] === 'dpkg')).toMatchObject({
      purl: 'pkg:deb/debian/dpkg@1%3A1.21.22?arch=amd64&distro=bookworm',
      hashes: [{ alg: 'SHA-256', content: SHA('dpkg') }],
      properties: [
        { name: 'vmfile:layer', value: 'box debian-12 2026.12.07' },
        { name: 'vmfile:debian:source', value: 'dpkg' },
        { name: 'vmfile:debian:architecture', value: 'amd64' },
      ],
    });
    // Every machine depends on each of its packages, by refs that exist.
    const refs = new Set(bom.components.flatMap((component) => component.components.map((inner) => inner['bom-ref'])));
    for (const dependency of bom.dependencies.slice(1)) for (const ref of dependency.dependsOn) expect(refs.has(ref)).toBe(true);
  });
});

describe('purl and time', () => {
  test('versions are percent-encoded (epoch, plus) and qualifiers are only what is known', () => {
    expect(purl({ name: 'libc6', version: '2.36-9+deb12u9', architecture: 'amd64' }, 'bookworm')).toBe('pkg:deb/debian/libc6@2.36-9%2Bdeb12u9?arch=amd64&distro=bookworm');
    expect(purl({ name: 'libc6', version: '2.36' })).toBe('pkg:deb/debian/libc6@2.36');
  });

  test('SOURCE_DATE_EPOCH, when set, is the creation time', () => {
    const now = new Date('2026-12-07T12:34:56.789Z');
    expect(creationTime({}, now)).toBe('2026-12-07T12:34:56Z');
    expect(creationTime({ SOURCE_DATE_EPOCH: '1700000000' }, now)).toBe('2023-11-14T22:13:20Z');
    expect(creationTime({ SOURCE_DATE_EPOCH: 'soon' }, now)).toBe('2026-12-07T12:34:56Z');
  });
});

/**
 * `vmfile sbom` through the built CLI, on the test store's debian-12 box (built by
 * global-setup): no machine boots. The SPDX document passes the SPDX project's schema,
 * the CycloneDX BOM the CycloneDX library, and both name every package Vmfile.lock pins,
 * with its digest and source package, as brought by the box.
 */
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { cyclonedxValidator, spdxValidator } from '../fixtures/schemas/validate.js';
import { cli, cliOk, makeProject } from './cli.js';

interface LockedDeb {
  name: string;
  version: string;
  architecture: string;
  source?: string;
  sha256: string;
}

const VMFILE = `import { defineVm } from 'vmfile';
export default defineVm({ box: 'debian-12', warmStart: false, folders: [] });
`;

describe('vmfile sbom', () => {
  const home = inject('vmfileHome');
  let project: string;
  let locked: { box: string; version: string; sha256: string; recipe: { packages: LockedDeb[] } };

  beforeAll(async () => {
    project = await makeProject(VMFILE);
    await cliOk('vmfile', ['lock', '--update'], { cwd: project, env: { VMFILE_HOME: home } });
    locked = (JSON.parse(await readFile(join(project, 'Vmfile.lock'), 'utf8')) as { machines: Record<string, typeof locked> }).machines['default'] ?? expect.fail('no lock entry');
  });

  afterAll(async () => {
    await rm(project, { recursive: true, force: true });
  });

  it('writes SPDX 2.3 that the SPDX schema accepts, with every locked package, its digest, purl and source, contained in the machine', async () => {
    const { stdout } = await cliOk('vmfile', ['sbom', '--format', 'spdx'], { cwd: project, env: { VMFILE_HOME: home, SOURCE_DATE_EPOCH: '1700000000' } });
    const document = JSON.parse(stdout) as { creationInfo: { created: string }; packages: { SPDXID: string; name: string; versionInfo: string; checksums?: { checksumValue: string }[]; sourceInfo?: string; comment?: string; externalRefs?: { referenceLocator: string }[] }[]; relationships: { relationshipType: string }[] };
    expect(await spdxValidator().then((validate) => validate(document))).toEqual([]);
    expect(document.creationInfo.created).toBe('2023-11-14T22:13:20Z');
    const machine = document.packages.find((pkg) => pkg.SPDXID === 'SPDXRef-Machine-default');
    expect(machine?.checksums?.[0]?.checksumValue).toBe(locked.sha256);
    const debs = document.packages.filter((pkg) => pkg.SPDXID !== 'SPDXRef-Machine-default');
    expect(debs).toHaveLength(locked.recipe.packages.length);
    expect(document.relationships.filter((rel) => rel.relationshipType === 'CONTAINS')).toHaveLength(locked.recipe.packages.length);
    for (const deb of locked.recipe.packages) {
      const found = debs.find((pkg) => pkg.name === deb.name && pkg.checksums?.[0]?.checksumValue === deb.sha256);
      expect(found, `${deb.name} ${deb.version}`).toBeDefined();
      expect(found?.versionInfo).toBe(deb.version);
      expect(found?.sourceInfo).toBe(`built from the Debian source package ${deb.source ?? deb.name}`);
      expect(found?.comment).toBe(`brought by the box ${locked.box} ${locked.version}`);
      expect(found?.externalRefs?.[0]?.referenceLocator).toMatch(new RegExp(`^pkg:deb/debian/${encodeURIComponent(deb.name).replace(/[.]/g, '\\.')}@[^?]+\\?arch=${deb.architecture}&distro=bookworm$`));
    }
  });

  it('writes CycloneDX 1.6 that the CycloneDX library accepts, to a file, the same each time', async () => {
    const env = { VMFILE_HOME: home, SOURCE_DATE_EPOCH: '1700000000' };
    const out = await cliOk('vmfile', ['sbom', '--format', 'cyclonedx', '--output', 'bom.json'], { cwd: project, env });
    expect(out.stdout).toContain(`default, ${locked.recipe.packages.length} packages`);
    const text = await readFile(join(project, 'bom.json'), 'utf8');
    expect(await cyclonedxValidator()(text)).toEqual([]);
    const bom = JSON.parse(text) as { components: { hashes: { content: string }[]; components: { name: string; hashes?: { content: string }[] }[] }[] };
    expect(bom.components[0]?.hashes[0]?.content).toBe(locked.sha256);
    expect(bom.components[0]?.components.map((component) => component.hashes?.[0]?.content).sort()).toEqual(locked.recipe.packages.map((deb) => deb.sha256).sort());
    // The same lock, the same bytes.
    await cliOk('vmfile', ['sbom', '--format', 'cyclonedx', '--output', 'again.json'], { cwd: project, env });
    expect(await readFile(join(project, 'again.json'), 'utf8')).toBe(text);
  });

  it('refuses a machine the lock does not name, with exit 78 and what to do', async () => {
    await rm(join(project, 'Vmfile.lock'));
    const result = await cli('vmfile', ['sbom'], { cwd: project, env: { VMFILE_HOME: home } });
    expect(result.code).toBe(78);
    expect(result.stderr).toContain('machine "default" is not in Vmfile.lock');
    expect(result.stderr).toContain('vmfile lock --update');
  });
});

/**
 * An inventory as an SPDX 2.3 JSON document: the document DESCRIBES each machine (an
 * OPERATING_SYSTEM package whose checksum is its box's disk digest), and each machine
 * CONTAINS its Debian packages (INSTALL packages with the .deb's SHA256, a purl, the
 * source package in sourceInfo and the layer in the comment). Licenses are not read
 * from the packages, so they are NOASSERTION, as SPDX asks when a tool does not know.
 */
import { inventoryDigest, purl, uuidFrom, type Inventory, type SbomMachine, type SbomPackage } from './inventory.js';

const NOASSERTION = 'NOASSERTION';

/** SPDX ids allow letters, digits, "." and "-" only. */
function spdxId(...parts: string[]): string {
  return `SPDXRef-${parts.map((part) => part.replace(/[^A-Za-z0-9.-]/g, '-')).join('-')}`;
}

function machineId(machine: SbomMachine): string {
  return spdxId('Machine', machine.name);
}

function packageId(machine: SbomMachine, deb: SbomPackage, index: number): string {
  return spdxId('Package', machine.name, deb.name, deb.architecture ?? 'unknown', deb.sha256?.slice(0, 12) ?? String(index));
}

export function spdxDocument(inventory: Inventory): object {
  const digest = inventoryDigest(inventory);
  const packages: object[] = [];
  const relationships: object[] = [];
  for (const machine of inventory.machines) {
    packages.push({
      SPDXID: machineId(machine),
      name: machine.name,
      versionInfo: `${machine.box.name} ${machine.box.version}`,
      primaryPackagePurpose: 'OPERATING_SYSTEM',
      downloadLocation: NOASSERTION,
      filesAnalyzed: false,
      checksums: [{ algorithm: 'SHA256', checksumValue: machine.box.sha256 }],
      licenseConcluded: NOASSERTION,
      licenseDeclared: NOASSERTION,
      copyrightText: NOASSERTION,
      comment: `vmfile machine "${machine.name}": box ${machine.box.name} ${machine.box.version} (${machine.box.architecture}), disk sha256 ${machine.box.sha256}`,
    });
    relationships.push({ spdxElementId: 'SPDXRef-DOCUMENT', relationshipType: 'DESCRIBES', relatedSpdxElement: machineId(machine) });
    machine.packages.forEach((deb, index) => {
      const id = packageId(machine, deb, index);
      packages.push({
        SPDXID: id,
        name: deb.name,
        versionInfo: deb.version,
        supplier: 'Organization: Debian',
        primaryPackagePurpose: 'INSTALL',
        downloadLocation: NOASSERTION,
        filesAnalyzed: false,
        ...(deb.sha256 === undefined ? {} : { checksums: [{ algorithm: 'SHA256', checksumValue: deb.sha256 }] }),
        sourceInfo: `built from the Debian source package ${deb.source ?? deb.name}`,
        licenseConcluded: NOASSERTION,
        licenseDeclared: NOASSERTION,
        copyrightText: NOASSERTION,
        externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: purl(deb, machine.suite) }],
        comment: `brought by the ${deb.layer}`,
      });
      relationships.push({ spdxElementId: machineId(machine), relationshipType: 'CONTAINS', relatedSpdxElement: id });
    });
  }
  return {
    spdxVersion: 'SPDX-2.3',
    dataLicense: 'CC0-1.0',
    SPDXID: 'SPDXRef-DOCUMENT',
    name: `${inventory.project}-${inventory.machines.map((machine) => machine.name).join('-')}`,
    documentNamespace: `https://spdx.org/spdxdocs/vmfile-${inventory.project.replace(/[^A-Za-z0-9.-]/g, '-')}-${uuidFrom(digest)}`,
    creationInfo: { created: inventory.created, creators: [`Tool: ${inventory.tool.name}-${inventory.tool.version}`] },
    packages,
    relationships,
  };
}

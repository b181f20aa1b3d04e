/**
 * An inventory as a CycloneDX 1.6 JSON BOM: the project is the BOM's subject, each
 * machine an operating-system component (hashed by its box's disk) holding its Debian
 * packages as nested components (purl, SHA-256 of the .deb, the source package and the
 * layer as vmfile: properties), and the dependency graph says each machine depends on
 * its packages. bom-refs are the machine and the purl, unique across the BOM.
 */
import { inventoryDigest, purl, uuidFrom, type Inventory, type SbomMachine, type SbomPackage } from './inventory.js';

function packageRef(machine: SbomMachine, deb: SbomPackage): string {
  return `${machine.name}/${purl(deb, machine.suite)}${deb.sha256 === undefined ? '' : `#${deb.sha256.slice(0, 12)}`}`;
}

export function cyclonedxDocument(inventory: Inventory): object {
  const digest = inventoryDigest(inventory);
  const components = inventory.machines.map((machine) => ({
    type: 'operating-system',
    'bom-ref': `machine/${machine.name}`,
    name: machine.name,
    version: `${machine.box.name} ${machine.box.version}`,
    description: `vmfile machine "${machine.name}": box ${machine.box.name} ${machine.box.version} (${machine.box.architecture})`,
    hashes: [{ alg: 'SHA-256', content: machine.box.sha256 }],
    properties: [
      { name: 'vmfile:box', value: `${machine.box.name} ${machine.box.version}` },
      { name: 'vmfile:architecture', value: machine.box.architecture },
    ],
    components: machine.packages.map((deb) => ({
      type: 'library',
      'bom-ref': packageRef(machine, deb),
      supplier: { name: 'Debian' },
      name: deb.name,
      version: deb.version,
      purl: purl(deb, machine.suite),
      ...(deb.sha256 === undefined ? {} : { hashes: [{ alg: 'SHA-256', content: deb.sha256 }] }),
      properties: [
        { name: 'vmfile:layer', value: deb.layer },
        { name: 'vmfile:debian:source', value: deb.source ?? deb.name },
        ...(deb.architecture === undefined ? [] : [{ name: 'vmfile:debian:architecture', value: deb.architecture }]),
      ],
    })),
  }));
  return {
    bomFormat: 'CycloneDX',
    specVersion: '1.6',
    serialNumber: `urn:uuid:${uuidFrom(digest)}`,
    version: 1,
    metadata: {
      timestamp: inventory.created,
      tools: { components: [{ type: 'application', name: inventory.tool.name, version: inventory.tool.version }] },
      component: { type: 'application', 'bom-ref': `project/${inventory.project}`, name: inventory.project },
    },
    components,
    dependencies: [
      { ref: `project/${inventory.project}`, dependsOn: inventory.machines.map((machine) => `machine/${machine.name}`) },
      ...inventory.machines.map((machine) => ({ ref: `machine/${machine.name}`, dependsOn: machine.packages.map((deb) => packageRef(machine, deb)) })),
    ],
  };
}

/**
 * The libvirt driver's own files in a machine's directory (the names every driver
 * shares are in store/layout.ts). The machine's disk and seed are volumes on its host.
 */
import { join } from 'node:path';

export interface LibvirtFiles {
  /** The domain definition vmfile last gave the host (virsh reads it from here). */
  domainXml: string;
  /** The project network's definition, when this machine defined it. */
  networkXml: string;
  /** The SSH tunnel that brings a remote machine's forwarded ports here: its pid, and its log. */
  tunnelRecord: string;
  tunnelLog: string;
}

export function libvirtFiles(dir: string): LibvirtFiles {
  return {
    domainXml: join(dir, 'domain.xml'),
    networkXml: join(dir, 'libvirt-network.xml'),
    tunnelRecord: join(dir, 'tunnel.json'),
    tunnelLog: join(dir, 'tunnel.log'),
  };
}

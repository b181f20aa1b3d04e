/**
 * A machine on a libvirt host is checked against that host, before anything is made:
 * its CPUs, memory and KVM as `virsh nodeinfo` and `virsh capabilities` say there, never
 * this workstation's, and without a local qemu-system. The host here is a `virsh` on
 * PATH that answers as a small remote host would (the seam is the virsh program itself).
 */
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { parseHostFacts } from '../../../../src/driver/libvirt/host.js';
import { ConfigError, UserError } from '../../../../src/errors.js';
import { upMachines } from '../../../../src/lifecycle/up.js';
import { validate } from '../../../../src/services/validate.js';
import { parseVmfile } from '../../../../src/vmfile/config.js';
import { quiet } from '../../quiet-reporter.js';
import { tempDir } from '../../temp-dir.js';

const capabilities = (cpuFeatures: string, domains: string) => `<capabilities>
  <host>
    <uuid>1b4e28ba-2fa1-11d2-883f-0016d3cca427</uuid>
    <cpu>
      <arch>x86_64</arch>
      <model>EPYC</model>
      ${cpuFeatures}
    </cpu>
  </host>
  <guest>
    <os_type>hvm</os_type>
    <arch name='x86_64'>
      <wordsize>64</wordsize>
      <emulator>/usr/bin/qemu-system-x86_64</emulator>
      ${domains}
    </arch>
  </guest>
</capabilities>
`;

const NODEINFO = 'CPU model:           x86_64\nCPU(s):              2\nCPU frequency:       2000 MHz\nMemory size:         1048576 KiB\n';

describe('parseHostFacts', () => {
  test.each([
    ['kvm offered and the CPU has svm', "<feature name='svm'/>", "<domain type='qemu'/><domain type='kvm'/>", ['kvm', 'tcg']],
    ['kvm offered but no vmx/svm (nested, para-virtual)', "<feature name='hypervisor'/>", "<domain type='qemu'/><domain type='kvm'/>", ['tcg']],
    ['no kvm domain', "<feature name='vmx'/>", "<domain type='qemu'/>", ['tcg']],
  ])('%s', (_what, features, domains, accels) => {
    const facts = parseHostFacts('qemu+ssh://root@lab/system', NODEINFO, capabilities(features, domains));
    expect(facts).toMatchObject({ name: 'libvirt host root@lab', cpus: 2, memory: 1024 ** 3, arches: ['x86_64'], liveFolders: [] });
    expect(facts.accels).toEqual(accels);
  });

  test('nodeinfo without its numbers is refused, naming the host', () => {
    expect(() => parseHostFacts('qemu:///system', 'CPU model: x86_64\n', capabilities('', ''))).toThrow(ConfigError);
  });
});

describe('a machine on a remote libvirt host', () => {
  let path: string | undefined;
  beforeEach(() => {
    path = process.env['PATH'];
  });
  afterEach(() => {
    process.env['PATH'] = path;
  });

  /** A PATH with only what vmfile needs for libvirt (virsh, genisoimage, ssh, ssh-keygen): no qemu-system. */
  async function remoteHost(): Promise<string> {
    const bin = await tempDir();
    const script = `#!/bin/sh
case "$*" in
  *nodeinfo*) printf '%s' '${NODEINFO}' ;;
  *capabilities*) printf '%s' "${capabilities("<feature name='svm'/>", "<domain type='qemu'/>").replaceAll('"', '\\"')}" ;;
  *pool-info*) printf 'Name: default\\nState:          running\\n' ;;
  *) echo "error: unexpected virsh call: $*" >&2; exit 1 ;;
esac
`;
    await writeFile(join(bin, 'virsh'), script);
    for (const tool of ['genisoimage', 'ssh', 'ssh-keygen']) await writeFile(join(bin, tool), '#!/bin/sh\nexit 0\n');
    for (const tool of ['virsh', 'genisoimage', 'ssh', 'ssh-keygen']) await chmod(join(bin, tool), 0o755);
    // Nothing else: the scripts use only the shell's builtins.
    process.env['PATH'] = bin;
    return bin;
  }

  async function project(memory: string) {
    const dir = await tempDir();
    await mkdir(dir, { recursive: true });
    return parseVmfile({ box: 'no-such-box', memory, cpus: 1, folders: [], provider: { type: 'libvirt', uri: 'qemu+ssh://root@lab/system', pool: 'default' } }, join(dir, 'Vmfile.ts'), dir);
  }

  test('more memory than that host has is refused, naming the host and its memory, though this workstation has plenty', async () => {
    await remoteHost();
    const error = await validate({ project: await project('2GiB') }, { env: {} }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toBe('machine "default": memory is 2GiB but libvirt host root@lab has 1GiB in total');
  });

  test('a machine that fits is checked without a local qemu-system: vmup goes on to its box', async () => {
    await remoteHost();
    const home = await tempDir();
    const error = await upMachines({ project: await project('512MiB'), provision: 'boot' }, { home, reporter: quiet, env: {} }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(UserError);
    expect((error as Error).message).toBe('machine "default": unknown box "no-such-box"');
  });
});

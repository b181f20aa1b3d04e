// A Vmfile declares one machine. vmup reads Vmfile.ts in the current directory (or a
// parent); try this one with: vmup --vmfile Vmfile.example.ts
import { defineVm } from 'vmfile';

export default defineVm({
  // Base box: a name ("debian-12" is built from Debian packages on first use), or
  // { name, version } to pin one version of an installed box. vmup downloads a missing
  // box from a url: a Vagrant catalog ({ name: 'org/name', url: 'https://…/catalog.json',
  // version: '>= 1.2' }) or a box file, which needs its checksum
  // ({ name: 'cloud', url: 'https://…/cloud.qcow2', checksum: 'sha256:…' }).
  box: 'debian-12',
  // Virtual CPUs (1 to the host's count).
  cpus: 2,
  // Memory and disk as sizes: "512MiB", "2GiB"... The disk grows the box's file system.
  memory: '1GiB',
  disk: '8GiB',
  // Guest hostname (default: the project directory's name).
  hostname: 'example',
  // 'auto' (default) uses KVM only where it really works, else software emulation;
  // 'kvm' or 'tcg' force one. The VMFILE_ACCEL environment variable overrides this.
  accel: 'auto',
  // For a box that boots itself (a cloud image, a Vagrant box): 'bios' or 'uefi'.
  // Default: what `vmfile box add` found on its disk. debian-12 boots its kernel directly.
  // firmware: 'uefi',
  // Seconds to wait for SSH after QEMU starts before giving up (default 300).
  bootTimeout: 300,
  // Start a new machine from the box's saved running state instead of booting it, and
  // keep the first once steps as cached layers. Unset: wherever that can apply (a box
  // that boots its kernel, under vmfile's QEMU, without a live folder). The first
  // machine of a shape makes the state with one boot; false always boots.
  // warmStart: false,
  // Where it runs: vmfile's own QEMU (the default), or a libvirt host, this one or a lab
  // server: { type: 'libvirt', uri: 'qemu+ssh://me@lab/system', pool: 'default' }.
  // In `defaults`, hosts: [URI, ...] spreads the machines over several hosts.
  provider: { type: 'qemu' },
  // Steps run over SSH in order. `run`: 'once' (default; until it has succeeded once),
  // 'always' (every vmup) or 'never' (only by name: vmfile provision --step NAME).
  provision: [
    // Inline shell script, as root by default (privileged: false runs it as the user).
    { name: 'motd', shell: 'echo "built by vmfile" > /etc/motd' },
    // A script file next to the Vmfile, with arguments and environment.
    { name: 'hello', script: 'example/hello.sh', args: ['--greeting', 'hello from vmfile'], env: { LANG: 'C.UTF-8' }, privileged: false, run: 'always' },
    // Upload a file or directory (parents are created).
    { name: 'data', file: { source: 'example/data', destination: '/home/vm/data' } },
  ],
});

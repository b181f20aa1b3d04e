#!/usr/bin/env bash
# Benchmark (not a test): a new machine's `vmup` to SSH-ready with the libvirt provider
# (qemu:///system) against the built-in provider, same box, same shape, interleaved in
# the same run so background noise hits both alike. Each run destroys the machine and
# brings up a new one; the libvirt side's box upload into the pool happens before the
# runs and is not counted (once per host). Target: libvirt/built-in <= 1.15.
#   usage: bench/libvirt.sh [RUNS]
#   VMFILE_HOME selects the box store; POOL (default "default") names an active storage
#   pool of the local libvirtd, which must be running (virsh -c qemu:///system list).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-3}
pool=${POOL:-default}
virsh -q -c qemu:///system pool-info "$pool" >/dev/null || { echo "bench/libvirt.sh: start libvirtd and give an active pool (POOL=$pool)" >&2; exit 1; }
work=$(mktemp -d /tmp/vmfile-bench-libvirt.XXXXXX)
trap 'for p in qemu libvirt; do (cd "$work/$p" 2>/dev/null && node "$root/bin/vmfile.js" destroy -f >/dev/null 2>&1); done; rm -rf "$work"' EXIT
. "$root/bench/lib.sh"

for provider in qemu libvirt; do
  mkdir -p "$work/$provider"
  if [ "$provider" = qemu ]; then spec="{ type: 'qemu' }"; else spec="{ type: 'libvirt', uri: 'qemu:///system', pool: '$pool' }"; fi
  # Both boot: libvirt has no warm start, and the built-in one is bench/up.sh's subject.
  cat > "$work/$provider/Vmfile.ts" <<VMFILE
import { defineVm } from 'vmfile';
export default defineVm({ box: 'debian-12', cpus: 2, memory: '1GiB', disk: '4GiB', folders: [], warmStart: false, provider: $spec });
VMFILE
  : > "$work/$provider.times"
done
# The box reaches the pool once; not part of a machine's start.
(cd "$work/libvirt" && node "$root/bin/vmfile.js" up --no-provision >/dev/null 2>&1 && node "$root/bin/vmfile.js" destroy -f >/dev/null 2>&1)

for i in $(seq 1 "$runs"); do
  for provider in qemu libvirt; do
    cd "$work/$provider"
    node "$root/bin/vmfile.js" destroy -f >/dev/null 2>&1 || true
    t0=$(now); node "$root/bin/vmfile.js" up --no-provision 2>"$work/up.log"; t1=$(now)
    awk "BEGIN{print $t1 - $t0}" >> "$work/$provider.times"
    node "$root/bin/vmfile.js" destroy -f >/dev/null 2>&1
  done
  printf 'run %d: built-in %.1f s, libvirt %.1f s\n' "$i" "$(tail -1 "$work/qemu.times")" "$(tail -1 "$work/libvirt.times")"
done
q=$(median < "$work/qemu.times"); l=$(median < "$work/libvirt.times")
printf '\nmedian of %d runs, new machine to SSH-ready (TCG or KVM as detected):\n' "$runs"
printf '  built-in provider  %6.2f s\n' "$q"
printf '  libvirt provider   %6.2f s\n' "$l"
printf '  ratio libvirt/built-in  %6.3f   (target <= 1.15)\n' "$(awk "BEGIN{print $l / $q}")"

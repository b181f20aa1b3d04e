#!/usr/bin/env bash
# Benchmark (not a test): the cost of one command over SSH on a running machine, with
# OpenSSH's connection sharing (what vmssh and `vmfile ssh-config` set up) against a
# full key exchange per command (ControlPath=none), interleaved in the same run, on the
# same machine. Also `vmssh -c true` end to end (node start, Vmfile, then the shared
# connection) against the target of 0.3 s.
#   usage: bench/ssh.sh [RUNS]      (VMFILE_HOME selects the box store)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-7}
work=$(mktemp -d /tmp/vmfile-bench-ssh.XXXXXX)
trap 'cd "$work" && node "$root/bin/vmfile.js" destroy -f >/dev/null 2>&1; rm -rf "$work"' EXIT
. "$root/bench/lib.sh"
cd "$work"
cat > Vmfile.ts <<VMFILE
import { defineVm } from 'vmfile';
export default defineVm({ box: 'debian-12', cpus: 2, memory: '1GiB', folders: [], warmStart: false });
VMFILE
node "$root/bin/vmfile.js" up --no-provision >/dev/null 2>&1
node "$root/bin/vmfile.js" ssh-config > ssh-config
: > handshake.times; : > shared.times; : > vmssh.times
for i in $(seq 1 "$runs"); do
  t0=$(now); ssh -o ControlPath=none -F ssh-config default true; t1=$(now); awk "BEGIN{print $t1 - $t0}" >> handshake.times
  t0=$(now); ssh -F ssh-config default true; t1=$(now); awk "BEGIN{print $t1 - $t0}" >> shared.times
  t0=$(now); node "$root/bin/vmssh.js" -c true; t1=$(now); awk "BEGIN{print $t1 - $t0}" >> vmssh.times
done
h=$(median < handshake.times); s=$(median < shared.times); v=$(median < vmssh.times)
printf 'median of %d runs (TCG or KVM as detected), the first shared run opens the master:\n' "$runs"
printf '  ssh true, key exchange each time   %6.3f s\n' "$h"
printf '  ssh true, shared connection        %6.3f s  (ratio %.3f)\n' "$s" "$(awk "BEGIN{print $s / $h}")"
printf '  vmssh -c true                      %6.3f s  (target <= 0.3 s)\n' "$v"

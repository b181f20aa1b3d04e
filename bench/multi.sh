#!/usr/bin/env bash
# Benchmark (not a test): wall seconds to bring up one machine and two machines (target
# on 2 cores: two in <= 1.6x the time of one), and the guest's read throughput of a
# 256 MiB file in a synced folder (virtiofs where available) against the same read from
# the guest's own disk, caches dropped before each read.
#   usage: bench/multi.sh      (VMFILE_HOME selects the box store)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/vmfile-bench-multi.XXXXXX)
trap 'for p in one two; do (cd "$work/$p" 2>/dev/null && node "$root/bin/vmfile.js" destroy -f >/dev/null 2>&1); done; rm -rf "$work"' EXIT
. "$root/bench/lib.sh"
vmfile() { node "$root/bin/vmfile.js" "$@"; }

mkdir -p "$work/one/shared" "$work/two"
cat > "$work/one/Vmfile.ts" <<'VMFILE'
import { defineVm } from 'vmfile';
export default defineVm({ box: 'debian-12', cpus: 1, memory: '1GiB', disk: '4GiB', warmStart: false, folders: [{ host: 'shared', guest: '/shared' }] });
VMFILE
cat > "$work/two/Vmfile.ts" <<'VMFILE'
import { defineVm } from 'vmfile';
export default defineVm({
  defaults: { box: 'debian-12', cpus: 1, memory: '1GiB', disk: '4GiB', folders: [], warmStart: false },
  machines: { web: { network: { ip: '10.10.0.11' } }, db: { network: { ip: '10.10.0.12' } } },
});
VMFILE

cd "$work/one"; t0=$(now); vmfile up --no-provision 2>/dev/null; t1=$(now); one=$(awk "BEGIN{print $t1 - $t0}")
head -c 256M /dev/urandom > shared/big
read_mbps() { vmfile ssh -c "sync; echo 3 | sudo tee /proc/sys/vm/drop_caches >/dev/null; dd if=$1 of=/dev/null bs=1M 2>&1 | tail -1"; }
folder=$(read_mbps /shared/big)
vmfile ssh -c 'cp /shared/big /var/tmp/big && sync'
disk=$(read_mbps /var/tmp/big)
type=$(vmfile status --json >/dev/null; node -e 'const s=require(process.argv[1]);console.log((s.folders??[]).map(f=>f.type).join(","))' "$work/one/.vmfile/machines/default/machine.json")
vmfile destroy -f >/dev/null 2>&1

cd "$work/two"; t0=$(now); vmfile up --no-provision 2>/dev/null; t1=$(now); two=$(awk "BEGIN{print $t1 - $t0}")

printf 'bring-up, from vmup to SSH-ready (TCG, 1 CPU and 1 GiB each):\n'
printf '  one machine    %6.1f s\n' "$one"
printf '  two machines   %6.1f s   ratio %.2f (target <= 1.6)\n' "$two" "$(awk "BEGIN{print $two / $one}")"
printf 'guest read of a 256 MiB file, caches dropped:\n'
printf '  synced folder (%s): %s\n' "$type" "$folder"
printf '  guest disk:           %s\n' "$disk"

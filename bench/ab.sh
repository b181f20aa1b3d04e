#!/usr/bin/env bash
# Benchmark (not a test): two builds of vmfile side by side, for "this change is no
# slower". OLD and NEW are checkouts with dist/ built. For each build: the wall time of
# `vmfile status` on a running machine, and a new machine from a warm state to SSH
# (`vmfile destroy -f` then `vmup --no-provision`; each build's warm state made once
# first, not counted). Runs alternate OLD, NEW, OLD, NEW..., so background noise hits
# both alike; it prints each side's median, its spread (min-max) and NEW/OLD.
#   usage: bench/ab.sh OLD_DIR NEW_DIR [RUNS]      (VMFILE_HOME selects the box store)
set -euo pipefail
old=$(cd "$1" && pwd)
new=$(cd "$2" && pwd)
runs=${3:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/bench/lib.sh"
work=$(mktemp -d /tmp/vmfile-bench-ab.XXXXXX)
trap 'for side in old new; do (cd "$work/$side" 2>/dev/null && node "${!side}/bin/vmfile.js" destroy -f >/dev/null 2>&1) || true; done; rm -rf "$work"' EXIT

for side in old new; do
  mkdir -p "$work/$side"
  cat > "$work/$side/Vmfile.ts" <<'VMFILE'
import { defineVm } from 'vmfile';
export default defineVm({ box: 'debian-12', cpus: 2, memory: '1GiB', disk: '4GiB', folders: [], warmStart: true });
VMFILE
  # The warm state of each build, made once and not counted.
  (cd "$work/$side" && node "${!side}/bin/vmfile.js" destroy -f >/dev/null 2>&1 || true; node "${!side}/bin/vmup.js" --no-provision >/dev/null 2>&1)
done

seconds() { local t0 t1; t0=$(now); "$@" >/dev/null 2>&1; t1=$(now); echo "$t1 - $t0" | bc; }
for _ in $(seq "$runs"); do
  for side in old new; do
    cd "$work/$side"
    seconds node "${!side}/bin/vmfile.js" status >> "$work/$side.status"
    node "${!side}/bin/vmfile.js" destroy -f >/dev/null 2>&1
    seconds node "${!side}/bin/vmup.js" --no-provision >> "$work/$side.warm"
  done
done

report() {
  local what=$1 o n
  o=$(median < "$work/old.$what"); n=$(median < "$work/new.$what")
  printf '%-34s old %6.3f s (%s-%s)   new %6.3f s (%s-%s)   new/old %.3f\n' "$2" "$o" "$(sort -n "$work/old.$what" | head -1)" "$(sort -n "$work/old.$what" | tail -1)" \
    "$n" "$(sort -n "$work/new.$what" | head -1)" "$(sort -n "$work/new.$what" | tail -1)" "$(echo "$n / $o" | bc -l)"
}
echo "medians of $runs interleaved runs (min-max)"
report status 'vmfile status (running machine)'
report warm 'warm vmup --no-provision to SSH'

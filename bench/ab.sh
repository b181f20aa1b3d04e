#!/usr/bin/env bash
# Benchmark (not a test): two builds of vmfile side by side, for "this change is no
# slower". OLD and NEW are checkouts with dist/ built. For each build: the wall time of
# `vmfile status` on a running machine; a new machine from a warm state to SSH
# (`vmfile destroy -f` then `vmup --no-provision`; each build's warm state is made once
# first, not counted); and, with COLD=1, a cold boot of a new machine to SSH
# (warmStart: false). Runs alternate OLD, NEW, OLD, NEW..., so background noise hits
# both alike; it prints each side's median, its spread (min-max) and NEW/OLD.
#   usage: [COLD=1] bench/ab.sh OLD_DIR NEW_DIR [RUNS]      (VMFILE_HOME selects the box store)
set -euo pipefail
old=$(cd "$1" && pwd)
new=$(cd "$2" && pwd)
runs=${3:-5}
cold=${COLD:-0}
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/bench/lib.sh"
work=$(mktemp -d /tmp/vmfile-bench-ab.XXXXXX)
trap 'for dir in "$work"/*/; do side=$(basename "$dir"); side=${side%-*}; (cd "$dir" && node "${!side}/bin/vmfile.js" destroy -f >/dev/null 2>&1) || true; done; rm -rf "$work"' EXIT

# project SIDE KIND: the project directory of one build (old, new) and start (warm, cold).
project() {
  local dir="$work/$1-$2"
  if [ ! -d "$dir" ]; then
    mkdir -p "$dir"
    cat > "$dir/Vmfile.ts" <<VMFILE
import { defineVm } from 'vmfile';
export default defineVm({ box: 'debian-12', cpus: 2, memory: '1GiB', disk: '4GiB', folders: [], warmStart: $([ "$2" = warm ] && echo true || echo false) });
VMFILE
  fi
  echo "$dir"
}
seconds() { local t0 t1; t0=$(now); "$@" >/dev/null 2>&1; t1=$(now); echo "$t1 - $t0" | bc; }

# The warm state of each build, made once and not counted.
for side in old new; do
  (cd "$(project "$side" warm)" && node "${!side}/bin/vmup.js" --no-provision >/dev/null 2>&1)
done

for _ in $(seq "$runs"); do
  for side in old new; do
    cd "$(project "$side" warm)"
    seconds node "${!side}/bin/vmfile.js" status >> "$work/$side.status"
    node "${!side}/bin/vmfile.js" destroy -f >/dev/null 2>&1
    seconds node "${!side}/bin/vmup.js" --no-provision >> "$work/$side.warm"
    if [ "$cold" = 1 ]; then
      cd "$(project "$side" cold)"
      seconds node "${!side}/bin/vmup.js" --no-provision >> "$work/$side.cold"
      node "${!side}/bin/vmfile.js" destroy -f >/dev/null 2>&1
    fi
  done
done

report() {
  local what=$1 side
  local -A mid lo hi
  for side in old new; do
    mid[$side]=$(median < "$work/$side.$what")
    lo[$side]=$(sort -n "$work/$side.$what" | head -1)
    hi[$side]=$(sort -n "$work/$side.$what" | tail -1)
  done
  printf '%-34s old %7.3f s (%.3f-%.3f)   new %7.3f s (%.3f-%.3f)   new/old %.3f\n' "$2" "${mid[old]}" "${lo[old]}" "${hi[old]}" \
    "${mid[new]}" "${lo[new]}" "${hi[new]}" "$(echo "${mid[new]} / ${mid[old]}" | bc -l)"
}
echo "medians of $runs interleaved runs (min-max)"
report status 'vmfile status (running machine)'
report warm 'warm vmup --no-provision to SSH'
[ "$cold" != 1 ] || report cold 'cold vmup --no-provision to SSH'

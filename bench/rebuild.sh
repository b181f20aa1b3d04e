#!/usr/bin/env bash
# Benchmark (not a test): rebuilding a locked box from the package store against building
# it from the network (Debian's mirror), measured in the same run. One network build is
# locked first (not counted) and its packages exported; then each run, alternating,
#   network: vmfile box build debian-12 into a fresh VMFILE_HOME (mmdebstrap downloads);
#   store:   vmfile lock import, then vmfile box build debian-12 --locked into a fresh
#            VMFILE_HOME (no download; the result must match Vmfile.lock bit for bit).
# It prints each side's median, its spread (min-max) and store/network.
#   usage: bench/rebuild.sh [RUNS]      (as root; needs Debian's mirror)
set -euo pipefail
runs=${1:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/bench/lib.sh"
work=$(mktemp -d /var/tmp/vmfile-bench-rebuild.XXXXXX)
trap 'rm -rf "$work"' EXIT
vmfile() { node "$root/bin/vmfile.js" "$@"; }

mkdir "$work/project"
cat > "$work/project/Vmfile.ts" <<'VMFILE'
import { defineVm } from 'vmfile';
export default defineVm({ box: 'debian-12' });
VMFILE
echo "locking a first network build (not counted)..."
VMFILE_HOME="$work/first" vmfile box build debian-12 --version 1.0 >/dev/null 2>&1
(cd "$work/project" && VMFILE_HOME="$work/first" vmfile lock --update >/dev/null && VMFILE_HOME="$work/first" vmfile lock export --output "$work/packages.tar" >/dev/null)
locked=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1])).machines.default.sha256)' "$work/project/Vmfile.lock")

for i in $(seq "$runs"); do
  home="$work/network-$i"
  t0=$(now); VMFILE_HOME="$home" vmfile box build debian-12 --version 1.0 >/dev/null 2>&1; t1=$(now)
  echo "$t1 - $t0" | bc >> "$work/network"
  rm -rf "$home"
  home="$work/store-$i"
  (cd "$work/project" && VMFILE_HOME="$home" vmfile lock import "$work/packages.tar" >/dev/null)
  t0=$(now); out=$(cd "$work/project" && VMFILE_HOME="$home" vmfile box build debian-12 --locked 2>/dev/null); t1=$(now)
  echo "$t1 - $t0" | bc >> "$work/store"
  case "$out" in *"sha256:$locked"*) ;; *) echo "run $i: the rebuild did not match Vmfile.lock: $out" >&2; exit 1 ;; esac
  rm -rf "$home"
  echo "run $i: network $(tail -1 "$work/network") s, store $(tail -1 "$work/store") s"
done

stat_of() { printf '%.1f s (%.1f-%.1f)' "$(median < "$work/$1")" "$(sort -n "$work/$1" | head -1)" "$(sort -n "$work/$1" | tail -1)"; }
echo "medians of $runs interleaved runs (min-max); every store rebuild matched Vmfile.lock ($locked)"
echo "network build:       $(stat_of network)"
echo "rebuild from store:  $(stat_of store)"
printf 'store/network:       %.3f\n' "$(echo "$(median < "$work/store") / $(median < "$work/network")" | bc -l)"

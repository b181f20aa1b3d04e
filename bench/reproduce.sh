#!/usr/bin/env bash
# Benchmark (not a test): replaying a study offline against the study's own first run,
# measured in the same run. The study is the e2e test's: a step installs hello from
# Debian's mirror, a script writes two outputs. Each run, alternating:
#   cold:      vmup of the study in a fresh VMFILE_HOME (the box is built from the
#              mirror, the steps fetch from it), as its author first ran it; then
#              vmfile bundle (not counted);
#   reproduce: vmfile reproduce of that bundle in a fresh VMFILE_HOME inside a network
#              namespace with only loopback: box rebuilt from the bundle's packages,
#              steps rerun over the pinned ones, outputs checked (it must exit 0).
# It prints each side's median, its spread (min-max) and reproduce/cold.
#   usage: bench/reproduce.sh [RUNS]      (as root; needs Debian's mirror)
set -euo pipefail
runs=${1:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/bench/lib.sh"
work=$(mktemp -d /var/tmp/vmfile-bench-reproduce.XXXXXX)
netns="vmfile-bench-reproduce-$$"
cleanup() {
  for dir in "$work"/study-* "$work"/replay-*; do
    [ -d "$dir/.vmfile" ] || continue
    home="$work/home-${dir##*/}"
    (cd "$dir" && VMFILE_HOME="$home" ip netns exec "$netns" node "$root/bin/vmfile.js" destroy -f >/dev/null 2>&1 || VMFILE_HOME="$home" node "$root/bin/vmfile.js" destroy -f >/dev/null 2>&1 || true)
  done
  ip netns del "$netns" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
vmfile() { node "$root/bin/vmfile.js" "$@"; }
ip netns add "$netns"
ip netns exec "$netns" ip link set lo up

study() {
  mkdir "$1"
  cat > "$1/Vmfile.ts" <<'VMFILE'
import { defineVm } from 'vmfile';
export default defineVm({
  box: 'debian-12', cpus: 2, memory: '1GiB',
  provision: [
    { name: 'install hello', shell: 'apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q hello' },
    { name: 'analyse', script: 'analyse.sh', outputs: ['results/*.txt'] },
  ],
});
VMFILE
  cat > "$1/analyse.sh" <<'SCRIPT'
#!/bin/sh
set -e
cd /vmfile
mkdir -p results
sha256sum /usr/bin/hello | cut -d' ' -f1 > results/hello.txt
sort input.csv | sha256sum | cut -d' ' -f1 > results/sorted.txt
SCRIPT
  printf 'b,2\na,1\n' > "$1/input.csv"
}

: > "$work/cold.times"; : > "$work/reproduce.times"
for i in $(seq "$runs"); do
  project="$work/study-$i"
  study "$project"
  home="$work/home-study-$i"
  t0=$(now); (cd "$project" && VMFILE_HOME="$home" vmfile up >/dev/null 2>&1); t1=$(now)
  awk "BEGIN{print $t1 - $t0}" >> "$work/cold.times"
  (cd "$project" && VMFILE_HOME="$home" vmfile bundle --output "$work/study-$i.vmbundle" >/dev/null && VMFILE_HOME="$home" vmfile destroy -f >/dev/null)
  rm -rf "$home"

  home="$work/home-replay-$i"
  t0=$(now)
  if ! VMFILE_HOME="$home" ip netns exec "$netns" node "$root/bin/vmfile.js" reproduce "$work/study-$i.vmbundle" --into "$work/replay-$i" > "$work/replay-$i.out" 2>&1; then
    echo "run $i: vmfile reproduce failed:" >&2; tail -20 "$work/replay-$i.out" >&2; exit 1
  fi
  t1=$(now)
  awk "BEGIN{print $t1 - $t0}" >> "$work/reproduce.times"
  rm -rf "$home"
  printf 'run %d: cold vmup %.1f s, reproduce offline %.1f s\n' "$i" "$(tail -1 "$work/cold.times")" "$(tail -1 "$work/reproduce.times")"
done
spread() { sort -n "$1" | awk 'NR==1{lo=$1} {hi=$1} END{printf "%.1f-%.1f", lo, hi}'; }
cold=$(median < "$work/cold.times"); replay=$(median < "$work/reproduce.times")
printf 'median of %d interleaved runs (spread min-max), each in a fresh VMFILE_HOME:\n' "$runs"
printf '  %-44s %6.1f s  (%s)\n' 'cold vmup of the study (mirror)' "$cold" "$(spread "$work/cold.times")"
printf '  %-44s %6.1f s  (%s)\n' 'vmfile reproduce of its bundle (offline)' "$replay" "$(spread "$work/reproduce.times")"
printf '  reproduce / cold: %.2f\n' "$(awk "BEGIN{print $replay / $cold}")"

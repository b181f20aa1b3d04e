#!/usr/bin/env bash
# Benchmark (not a test): how long vmfile takes to answer on a running machine, for the
# commands that boot nothing. Interleaved in one run: Node's own start (`node -e 0`, the
# floor), `vmfile status` and `vmssh -c true` on their quick paths (no oclif), and the
# same two through the full oclif command (`--vmfile` makes the quick path step aside),
# which is how every command ran before. Prints the median, the spread (min-max) and the
# ratio quick/full, against the targets of 0.15 s and 0.2 s.
#   usage: bench/cli-start.sh [RUNS]      (VMFILE_HOME selects the box store)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-9}
work=$(mktemp -d /tmp/vmfile-bench-start.XXXXXX)
trap 'cd "$work" && node "$root/bin/vmfile.js" destroy -f >/dev/null 2>&1; rm -rf "$work"' EXIT
. "$root/bench/lib.sh"
cd "$work"
cat > Vmfile.ts <<VMFILE
import { defineVm } from 'vmfile';
export default defineVm({ box: 'debian-12', cpus: 1, memory: '512MiB', folders: [] });
VMFILE
node "$root/bin/vmfile.js" up --no-provision >/dev/null 2>&1
vmfile() { node "$root/bin/vmfile.js" "$@"; }
vmssh() { node "$root/bin/vmssh.js" "$@"; }
timed() {
  local label=$1; shift
  local t0 t1; t0=$(now); "$@" >/dev/null; t1=$(now)
  awk "BEGIN{print $t1 - $t0}" >> "$label.times"
}
vmssh -c true # opens the shared connection, as the first vmssh of a session does
for label in node status status-full ssh ssh-full; do : > "$label.times"; done
for i in $(seq 1 "$runs"); do
  timed node node -e 0
  timed status vmfile status
  timed status-full vmfile status --vmfile Vmfile.ts
  timed ssh vmssh -c true
  timed ssh-full vmfile ssh -c true --vmfile Vmfile.ts
done
spread() { sort -n "$1.times" | awk 'NR==1{lo=$1} {hi=$1} END{printf "%.3f-%.3f", lo, hi}'; }
row() { printf '  %-34s %6.3f s  (%s)%s\n' "$1" "$(median < "$2.times")" "$(spread "$2")" "${3:-}"; }
ratio() { awk "BEGIN{printf \"%.2f\", $(median < "$1.times") / $(median < "$2.times")}"; }
printf 'median of %d interleaved runs (spread min-max), a machine running under TCG or KVM as detected:\n' "$runs"
row 'node -e 0 (the floor)' node
row 'vmfile status' status "  ratio to full $(ratio status status-full), target <= 0.15 s"
row 'vmfile status, full command' status-full
row 'vmssh -c true' ssh "  ratio to full $(ratio ssh ssh-full), target <= 0.2 s"
row 'vmfile ssh -c true, full command' ssh-full

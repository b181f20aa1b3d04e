#!/usr/bin/env bash
# Benchmark (not a test): online snapshot save and restore, suspend and resume of a
# 1 GiB guest, as wall time of the vmfile command, with the same operation sent
# straight to QEMU's QMP socket (no vmfile) in the same run as the baseline.
# Targets (TCG): save <= 1 s, restore until SSH answers <= 1 s, resume-to-SSH-ready <= 2 s.
#   usage: bench/snapshot.sh [RUNS]      (VMFILE_HOME selects the box store)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-3}
work=$(mktemp -d /tmp/vmfile-bench-snap.XXXXXX)
trap 'cd "$work" && node "$root/bin/vmfile.js" destroy -f >/dev/null 2>&1; rm -rf "$work"' EXIT
cd "$work"
cat > Vmfile.ts <<'VMFILE'
import { defineVm } from 'vmfile';
export default defineVm({ box: 'debian-12', cpus: 2, memory: '1GiB', disk: '4GiB', folders: [], warmStart: false });
VMFILE
vmfile() { node "$root/bin/vmfile.js" "$@"; }
. "$root/bench/lib.sh"
elapsed() { awk "BEGIN{printf \"%.3f\", $2 - $1}"; }
# Direct QMP: one HMP command through vmfile's own client, timed inside node.
qmp() { node --input-type=module -e "
  import { QmpClient } from '$root/dist/qmp/client.js';
  const q = await QmpClient.connect('$work/.vmfile/machines/default/qmp.sock');
  const t = performance.now(); const out = await q.hmp(process.argv[1], { timeoutMs: 120000 }); const s = (performance.now() - t) / 1000;
  q.close(); if (out.trim()) { console.error(out); process.exit(1); } console.log(s.toFixed(3));" "$1"; }

vmfile up >/dev/null 2>&1
for f in save restore loadvm bsave brestore suspend resume resumessh; do : > "$work/$f"; done
# Seconds of a phase line, e.g. '==> default: Restoring snapshot "s1" (disk and memory): done in 0.3s'.
phase() { grep -E "$1.*: done in" "$2" | sed -E 's/.*done in ([0-9.]+)s.*/\1/' | awk '{s+=$1} END {print s+0}'; }
for i in $(seq 1 "$runs"); do
  t0=$(now); vmfile snapshot save "s$i" 2>/dev/null; t1=$(now); elapsed "$t0" "$t1" >> save; echo >> save
  t0=$(now); vmfile snapshot restore "s$i" 2>restore.log; t1=$(now); elapsed "$t0" "$t1" >> restore; echo >> restore
  phase 'Restoring snapshot' restore.log >> loadvm
  qmp "savevm b$i" >> bsave
  qmp "loadvm b$i" >> brestore
  t0=$(now); vmfile suspend 2>/dev/null; t1=$(now); elapsed "$t0" "$t1" >> suspend; echo >> suspend
  t0=$(now); vmfile resume 2>resume.log; t1=$(now); elapsed "$t0" "$t1" >> resume; echo >> resume
  phase 'Resuming from saved memory|Waiting for SSH' resume.log >> resumessh
  printf 'run %d: save %s s, restore %s s, suspend %s s, resume %s s\n' "$i" "$(grep -v '^$' save | tail -1)" "$(grep -v '^$' restore | tail -1)" "$(grep -v '^$' suspend | tail -1)" "$(grep -v '^$' resume | tail -1)"
done
m() { grep -v '^$' "$1" | median; }
printf '\nmedians of %d runs, 1 GiB guest (wall time of the vmfile command, node start-up included):\n' "$runs"
printf '  snapshot save      %6.2f s   (target <= 1 s)     direct QMP savevm %6.2f s\n' "$(m save)" "$(m bsave)"
printf '  snapshot restore   %6.2f s   (target <= 1 s, until SSH answers) of which loadvm %5.2f s   direct QMP loadvm %6.2f s\n' "$(m restore)" "$(m loadvm)" "$(m brestore)"
printf '  suspend            %6.2f s\n' "$(m suspend)"
printf '  resume             %6.2f s   of which QEMU start + SSH ready %5.2f s (target <= 2 s)\n' "$(m resume)" "$(m resumessh)"
echo '  restore also sets the guest clock (guest agent, else SSH) and waits for the SSH greeting; resume sets it over SSH.'
grep -q 'through the guest agent' restore.log && echo '  (the last restore set the clock through the guest agent)' || echo '  (the last restore set the clock over SSH: no guest agent answered)'

#!/usr/bin/env bash
# Benchmark (not a test): seconds from `vmup` to SSH-ready against bare QEMU + an SSH
# wait loop on the same box, same QEMU command line, same seed, in the same run; the
# ratio is vmfile's own overhead (target <= 1.05). Then `vmup` to provisioned with one
# step against the same bare boot running that step over SSH (target <= 1.1). Also the wall time of `vmfile status`
# (target < 0.3 s). Runs are interleaved so background noise hits both sides alike. The
# machine syncs no folders: a folder sync happens after SSH is ready and is not boot time.
# Then a new machine from a warm state (warmStart: true; the state made once first, not
# counted), interleaved with nothing: each run destroys the machine and brings up a new one.
# Then the folder sync on its own: this repository (node_modules and dist included, as
# in a developer's checkout) copied into an empty /vmfile with gitignore off ("before",
# what the default folder did) and on ("after"), interleaved, with `vmfile rsync`.
#   usage: bench/up.sh [RUNS]      (VMFILE_HOME selects the box store)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-3}
work=$(mktemp -d /tmp/vmfile-bench-up.XXXXXX)
trap 'cd "$work/project" 2>/dev/null && node "$root/bin/vmfile.js" destroy -f >/dev/null 2>&1; pkill -f "$work/bare" 2>/dev/null || true; rm -rf "$work"' EXIT
. "$root/bench/lib.sh"

mkdir -p "$work/project"
write_vmfile() {
  cat > "$work/project/Vmfile.ts" <<VMFILE
import { defineVm } from 'vmfile';
export default defineVm({ box: 'debian-12', cpus: 2, memory: '1GiB', disk: '4GiB', folders: $1, warmStart: ${2:-false}, provision: ${3:-[]} });
VMFILE
}
write_vmfile '[]'
cd "$work/project"
vmfile() { node "$root/bin/vmfile.js" "$@"; }

: > "$work/vmfile.times"; : > "$work/bare.times"; : > "$work/prov.times"; : > "$work/bare-prov.times"
# bare_boot [COMMAND]: the running machine's QEMU argv rerun bare on a fresh overlay of the
# same box, with the same seed and login key; halts the machine first. Waits for SSH,
# then runs COMMAND over SSH when given, and prints the seconds from QEMU's start.
bare_boot() {
  local m=.vmfile/machines/default pid backing port t0 t1
  pid=$(cat $m/qemu.pid)
  rm -rf "$work/bare"; mkdir -p "$work/bare"
  cp -r $m/seed "$work/bare/seed"; cp $m/id_ed25519 "$work/bare/key"; chmod 600 "$work/bare/key"
  backing=$(backing_of $m/overlay.qcow2)
  mapfile -d '' argv < /proc/$pid/cmdline
  vmfile halt --force >/dev/null 2>&1
  qemu-img create -q -f qcow2 -b "$backing" -F qcow2 "$work/bare/overlay.qcow2" 4G
  port=$(free_port)
  bare_argv "$PWD/$m" "$work/bare" "$port"
  local ssh=(ssh -q -i "$work/bare/key" -p "$port" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=5 vm@127.0.0.1)
  t0=$(now)
  qemu-system-x86_64 "${bare[@]}"
  until "${ssh[@]}" true 2>/dev/null; do sleep 0.5; done
  if [ $# -gt 0 ]; then "${ssh[@]}" "$1"; fi
  t1=$(now)
  kill "$(cat "$work/bare/qemu.pid")"
  awk "BEGIN{print $t1 - $t0}"
}
for i in $(seq 1 "$runs"); do
  # vmfile: a fresh machine each run, from the command to SSH-ready (no provisioning steps).
  vmfile destroy -f >/dev/null 2>&1 || true
  t0=$(now); vmfile up --no-provision 2>"$work/up.log"; t1=$(now)
  awk "BEGIN{print $t1 - $t0}" >> "$work/vmfile.times"
  bare_boot >> "$work/bare.times"
  printf 'run %d: vmfile up %.1f s, bare qemu %.1f s\n' "$i" "$(tail -1 "$work/vmfile.times")" "$(tail -1 "$work/bare.times")"
done

# Cold vmup to provisioned, one step, against the bare boot that runs the same command over
# SSH once it answers: whatever vmfile waits for (cloud-init included) is its overhead.
STEP='echo provisioned > /etc/vmfile-bench'
write_vmfile '[]' false "[{ name: 'mark', shell: '$STEP' }]"
for i in $(seq 1 "$runs"); do
  vmfile destroy -f >/dev/null 2>&1 || true
  t0=$(now); vmfile up 2>"$work/prov.log"; t1=$(now)
  grep -q 'Provisioning step "mark": done' "$work/prov.log" || { echo "run $i did not run the step:" >&2; cat "$work/prov.log" >&2; exit 1; }
  awk "BEGIN{print $t1 - $t0}" >> "$work/prov.times"
  bare_boot "sudo sh -c '$STEP'" >> "$work/bare-prov.times"
  printf 'provisioned run %d: vmfile up %.1f s, bare qemu + step %.1f s\n' "$i" "$(tail -1 "$work/prov.times")" "$(tail -1 "$work/bare-prov.times")"
done

# New machines from the box's warm state: the first vmup makes the state (timed apart).
write_vmfile '[]' true
vmfile destroy -f >/dev/null 2>&1 || true
t0=$(now); vmfile up --no-provision 2>"$work/warm-make.log"; t1=$(now)
make=$(awk "BEGIN{print $t1 - $t0}")
printf 'warm state made (and its first machine up) in %.1f s\n' "$make"
: > "$work/warm.times"
for i in $(seq 1 "$runs"); do
  vmfile destroy -f >/dev/null 2>&1
  t0=$(now); vmfile up --no-provision 2>"$work/warm.log"; t1=$(now)
  grep -q 'from the warm state' "$work/warm.log" || { echo "run $i did not start from the warm state:" >&2; cat "$work/warm.log" >&2; exit 1; }
  awk "BEGIN{print $t1 - $t0}" >> "$work/warm.times"
  printf 'warm run %d: vmup %.1f s\n' "$i" "$(tail -1 "$work/warm.times")"
done
vmfile destroy -f >/dev/null 2>&1

# The repository as the machine's rsync folder; gitignore is switched in the Vmfile between
# runs (vmfile rsync reads it), and /vmfile is emptied first so each run is a first copy.
folder() { write_vmfile "[{ host: '$root', guest: '/vmfile', type: 'rsync', gitignore: $1 }]"; }
folder false
vmfile up --no-provision >/dev/null 2>&1
: > "$work/sync-before.times"; : > "$work/sync-after.times"
for i in $(seq 1 "$runs"); do
  for mode in before after; do
    if [ "$mode" = before ]; then folder false; else folder true; fi
    node "$root/bin/vmssh.js" -c 'sudo rm -rf /vmfile' >/dev/null
    vmfile rsync 2>"$work/sync.log"
    grep -oE 'done in [0-9.]+s' "$work/sync.log" | tail -1 | grep -oE '[0-9.]+' >> "$work/sync-$mode.times"
    files=$(node "$root/bin/vmssh.js" -c 'find /vmfile -type f | wc -l')
    printf 'sync %d %-6s %5.1f s, %s files in /vmfile\n' "$i" "$mode" "$(tail -1 "$work/sync-$mode.times")" "$files"
  done
done
: > "$work/status.times"
for i in $(seq 1 7); do t0=$(now); vmfile status >/dev/null; t1=$(now); awk "BEGIN{print $t1 - $t0}" >> "$work/status.times"; done

v=$(median < "$work/vmfile.times"); b=$(median < "$work/bare.times"); s=$(median < "$work/status.times")
printf '\nmedian of %d runs (TCG or KVM as detected):\n' "$runs"
printf '  vmup to SSH-ready        %6.2f s\n' "$v"
printf '  bare QEMU to SSH-ready   %6.2f s\n' "$b"
printf '  ratio vmfile/bare        %6.3f   (target <= 1.05)\n' "$(awk "BEGIN{print $v / $b}")"
p=$(median < "$work/prov.times"); bp=$(median < "$work/bare-prov.times")
printf '  vmup to provisioned (one step)      %6.2f s\n' "$p"
printf '  bare QEMU + the same step over SSH  %6.2f s\n' "$bp"
printf '  ratio vmfile/bare                   %6.3f   (target <= 1.1)\n' "$(awk "BEGIN{print $p / $bp}")"
w=$(median < "$work/warm.times")
printf '  vmup of a new machine from the warm state to SSH-ready  %6.2f s  (target <= 3 s; %.3f of the cold vmup)\n' "$w" "$(awk "BEGIN{print $w / $v}")"
printf '  making the warm state, with its first machine           %6.2f s  (once per box and shape)\n' "$make"
printf '  vmfile status wall time  %6.3f s (target < 0.3 s)\n' "$s"
sb=$(median < "$work/sync-before.times"); sa=$(median < "$work/sync-after.times")
printf '  folder sync of this repo, everything       %6.2f s\n' "$sb"
printf '  folder sync of this repo, .gitignore kept  %6.2f s  (ratio %.3f)\n' "$sa" "$(awk "BEGIN{print $sa / $sb}")"

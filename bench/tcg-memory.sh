#!/usr/bin/env bash
# Benchmark (not a test): QEMU's resident memory under TCG against its translation-cache
# size (-accel tcg,tb-size=MiB), and what a smaller cache costs in boot time. The
# machine's own QEMU command line is rerun bare, on a fresh overlay each time, with only
# the accelerator changed; "default" is QEMU's own size (vmfile's is a quarter of guest
# memory, 64 to 256 MiB: qemu/argv.ts tcgCacheMiB). For each size: seconds to SSH, then RSS after the guest has idled IDLE seconds, and RSS against guest memory. Sizes are
# interleaved run by run so background noise hits them alike. After the idle RSS, a
# workload that runs much code the boot did not (WORK, over SSH) is timed, since a full
# cache is what costs: translated code is thrown away and translated again.
#   usage: bench/tcg-memory.sh [RUNS] [SIZES...]   (default: 2 runs of default 512 256 128)
#   VMFILE_HOME selects the box store; MEMORY (default 1GiB) the guest memory; IDLE (default 20)
#   the idle seconds; WORK the workload.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-2}; [ $# -gt 0 ] && shift
if [ $# -eq 0 ]; then sizes=(default 512 256 128); else sizes=("$@"); fi
idle=${IDLE:-20}
memory=${MEMORY:-1GiB}
work_cmd=${WORK:-'sudo python3 -m compileall -f -q /usr/lib/python3.11 /usr/lib/python3/dist-packages; sudo dpkg --verify; perl -MPOSIX -MData::Dumper -MFile::Find -e 1; apt-cache dump >/dev/null; true'}
work=$(mktemp -d /tmp/vmfile-bench-tcg.XXXXXX)
trap 'pkill -f "$work/bare" 2>/dev/null || true; cd "$work/project" 2>/dev/null && node "$root/bin/vmfile.js" destroy -f >/dev/null 2>&1; rm -rf "$work"' EXIT
. "$root/bench/lib.sh"

mkdir -p "$work/project"; cd "$work/project"
cat > Vmfile.ts <<VMFILE
import { defineVm } from 'vmfile';
export default defineVm({ box: 'debian-12', cpus: 2, memory: '$memory', disk: '4GiB', folders: [], warmStart: false });
VMFILE
node "$root/bin/vmfile.js" up --no-provision >/dev/null 2>&1
m=.vmfile/machines/default
pid=$(cat $m/qemu.pid)
mapfile -d '' argv < /proc/$pid/cmdline
backing=$(backing_of $m/overlay.qcow2)
guest_mib=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")).launch.memory/1048576)' $m/machine.json)
cp -r $m/seed "$work/seed"; cp $m/id_ed25519 "$work/key"; chmod 600 "$work/key"
node "$root/bin/vmfile.js" halt --force >/dev/null 2>&1

for size in "${sizes[@]}"; do : > "$work/boot-$size"; : > "$work/rss-$size"; : > "$work/work-$size"; done
for i in $(seq 1 "$runs"); do
  for size in "${sizes[@]}"; do
    rm -rf "$work/bare"; mkdir -p "$work/bare"
    qemu-img create -q -f qcow2 -b "$backing" -F qcow2 "$work/bare/overlay.qcow2" 4G
    cp -r "$work/seed" "$work/bare/seed"
    port=$(free_port)
    bare_argv "$PWD/$m" "$work/bare" "$port"
    # The accelerator is given below with its cache size: the machine's own -accel goes.
    args=("${bare[@]}"); bare=()
    for ((j = 0; j < ${#args[@]}; j++)); do
      if [ "${args[j]}" = -accel ]; then j=$((j + 1)); continue; fi
      bare+=("${args[j]/#q35,accel=tcg/q35}")
    done
    if [ "$size" = default ]; then accel=(-accel tcg); else accel=(-accel "tcg,tb-size=$size"); fi
    t0_boot=$(now)
    qemu-system-x86_64 "${bare[@]}" "${accel[@]}"
    until ssh -q -i "$work/key" -p "$port" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=5 vm@127.0.0.1 true 2>/dev/null; do sleep 0.5; done
    t1=$(now)
    sleep "$idle"
    qpid=$(cat "$work/bare/qemu.pid")
    rss=$(awk '/^VmRSS/ {print $2 / 1024}' /proc/$qpid/status)
    t0=$(now)
    ssh -q -i "$work/key" -p "$port" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null vm@127.0.0.1 "$work_cmd" </dev/null >/dev/null 2>&1 || true
    t2=$(now)
    rss_after=$(awk '/^VmRSS/ {print $2 / 1024}' /proc/$qpid/status)
    kill "$qpid"; while kill -0 "$qpid" 2>/dev/null; do sleep 0.2; done
    awk "BEGIN{print $t1 - $t0_boot}" >> "$work/boot-$size"; echo "$rss" >> "$work/rss-$size"; awk "BEGIN{print $t2 - $t0}" >> "$work/work-$size"
    printf 'run %d tb-size %-7s to SSH %5.1f s, RSS %6.0f MiB idle; workload %5.1f s, RSS %6.0f MiB after\n' "$i" "$size" "$(tail -1 "$work/boot-$size")" "$rss" "$(tail -1 "$work/work-$size")" "$rss_after"
  done
done

printf '\nmedian of %d runs, guest memory %d MiB, TCG:\n' "$runs" "$guest_mib"
b0=$(median < "$work/boot-${sizes[0]}"); r0=$(median < "$work/rss-${sizes[0]}"); w0=$(median < "$work/work-${sizes[0]}")
for size in "${sizes[@]}"; do
  b=$(median < "$work/boot-$size"); r=$(median < "$work/rss-$size"); w=$(median < "$work/work-$size")
  printf '  tb-size %-7s to SSH %6.2f s (x%.3f)   workload %6.2f s (x%.3f)   idle RSS %6.0f MiB (x%.3f of %s; %.2f of guest memory)\n' "$size" "$b" "$(awk "BEGIN{print $b / $b0}")" "$w" "$(awk "BEGIN{print $w / $w0}")" "$r" "$(awk "BEGIN{print $r / $r0}")" "${sizes[0]}" "$(awk "BEGIN{print $r / $guest_mib}")"
done

#!/usr/bin/env bash
# Benchmark (not a test): `vmfile destroy -f && vmup` of a Vmfile whose steps are all
# cached as provisioning layers (target <= 5 s), against the same Vmfile with every step
# run on the new machine (`vmup --no-cache`, from the box's warm state) and against a
# cold vmup that boots (warmStart: false), runs interleaved in the same run. The steps
# write 64 MiB and byte-compile Python's standard library: work a real environment
# repeats for every machine. The warm state and the layers are made once first, timed
# apart.
#   usage: bench/layers.sh [RUNS]      (VMFILE_HOME selects the box store)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-3}
work=$(mktemp -d /tmp/vmfile-bench-layers.XXXXXX)
trap 'cd "$work/project" 2>/dev/null && node "$root/bin/vmfile.js" destroy -f >/dev/null 2>&1; rm -rf "$work"' EXIT
. "$root/bench/lib.sh"

mkdir -p "$work/project"
write_vmfile() {
  cat > "$work/project/Vmfile.ts" <<VMFILE
import { defineVm } from 'vmfile';
export default defineVm({
  box: 'debian-12', cpus: 2, memory: '1GiB', disk: '4GiB', folders: [], warmStart: $1,
  provision: [
    { name: 'data', shell: 'dd if=/dev/urandom of=/opt/data bs=1M count=64 status=none' },
    { name: 'compile', shell: 'python3 -m compileall -q -j 0 /usr/lib/python3.11 >/dev/null; touch /opt/compiled' },
  ],
});
VMFILE
}
cd "$work/project"
vmfile() { node "$root/bin/vmfile.js" "$@"; }
up_timed() { # LOG ARGS...: seconds of destroy + vmup
  local log=$1; shift
  local t0 t1
  t0=$(now); vmfile destroy -f >/dev/null 2>&1 || true; vmfile up "$@" 2>"$log"; t1=$(now)
  node "$root/bin/vmssh.js" -c 'test -s /opt/data && test -e /opt/compiled' || { echo "the steps' results are missing after vmup $*:" >&2; cat "$log" >&2; exit 1; }
  awk "BEGIN{print $t1 - $t0}"
}

write_vmfile true
t=$(up_timed "$work/make.log")
printf 'warm state and layers made (and their first machine up) in %.1f s\n' "$t"
: > "$work/cached.times"; : > "$work/uncached.times"; : > "$work/cold.times"
for i in $(seq 1 "$runs"); do
  write_vmfile true
  up_timed "$work/cached.log" >> "$work/cached.times"
  grep -q 'over the provisioning layer of step "compile"' "$work/cached.log" || { echo "run $i did not start from the layers:" >&2; cat "$work/cached.log" >&2; exit 1; }
  up_timed "$work/uncached.log" --no-cache >> "$work/uncached.times"
  write_vmfile false
  up_timed "$work/cold.log" >> "$work/cold.times"
  printf 'run %d: all steps cached %.1f s, --no-cache %.1f s, cold %.1f s\n' "$i" "$(tail -1 "$work/cached.times")" "$(tail -1 "$work/uncached.times")" "$(tail -1 "$work/cold.times")"
done
vmfile destroy -f >/dev/null 2>&1

c=$(median < "$work/cached.times"); u=$(median < "$work/uncached.times"); k=$(median < "$work/cold.times")
printf '\nmedian of %d runs, destroy -f && vmup to provisioned:\n' "$runs"
printf '  every step cached (layers)        %6.2f s  (target <= 5 s)\n' "$c"
printf '  --no-cache (warm state, steps)    %6.2f s  (layers: %.3f of it)\n' "$u" "$(awk "BEGIN{print $c / $u}")"
printf '  cold (boot, steps)                %6.2f s  (layers: %.3f of it)\n' "$k" "$(awk "BEGIN{print $c / $k}")"

#!/bin/sh
# Builds the debian-12 box twice, one build after the other, into two fresh VMFILE_HOMEs
# with the CLI, and prints what came out the same: the package manifest (box.json), the
# disk's sha256, the kernel and initrd. A check, not a test: it prints, and exits 0 only
# when manifests and disks are identical. Needs root (mmdebstrap) and ~2 x 1.5 GB in
# $TMPDIR; takes about two minutes per build on a 2-core machine.
set -eu
cd "$(dirname "$0")/.."
[ -f dist/cli/main.js ] || npm run build >/dev/null
BOX=${1:-debian-12}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vmfile-repro.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
for run in a b; do
  mkdir -p "$WORK/$run"
  start=$(date +%s)
  VMFILE_HOME="$WORK/$run" node bin/vmfile.js box build "$BOX" --version repro >"$WORK/$run.log" 2>&1 || { cat "$WORK/$run.log"; exit 1; }
  echo "build $run: $(( $(date +%s) - start )) s"
done
A="$WORK/a/boxes/$BOX/repro" B="$WORK/b/boxes/$BOX/repro"
field() { node -e 'const m=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")); const v=process.argv[2].split(".").reduce((o,k)=>o?.[k],m); console.log(Array.isArray(v)?v.join("\n"):v)' "$1" "$2"; }
field "$A/box.json" source.packages >"$WORK/a.manifest"
field "$B/box.json" source.packages >"$WORK/b.manifest"
changed=$(diff "$WORK/a.manifest" "$WORK/b.manifest" | grep -c '^[<>]' || true)
echo "manifest: $(wc -l <"$WORK/a.manifest") packages; $([ "$changed" -eq 0 ] && echo identical || echo "$changed lines differ")"
[ "$changed" -eq 0 ] || diff "$WORK/a.manifest" "$WORK/b.manifest" | sed 's/^/  /' || true
same=0
for file in disk.qcow2 kernel initrd; do
  a=$(sha256sum "$A/$file" | cut -d' ' -f1) b=$(sha256sum "$B/$file" | cut -d' ' -f1)
  if [ "$a" = "$b" ]; then echo "$file: identical sha256:$a"; else echo "$file: DIFFERENT a=sha256:$a b=sha256:$b"; [ "$file" = disk.qcow2 ] && same=1; fi
done
if [ "$same" -ne 0 ]; then
  qemu-img convert -O raw "$A/disk.qcow2" "$WORK/a.raw" && qemu-img convert -O raw "$B/disk.qcow2" "$WORK/b.raw"
  echo "  raw file systems differ in $(cmp -l "$WORK/a.raw" "$WORK/b.raw" | wc -l) bytes"
fi
[ "$changed" -eq 0 ] && [ "$same" -eq 0 ]

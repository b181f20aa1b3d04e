#!/usr/bin/env bash
# Check (not a timing): the same Vmfile.lock rebuilds the same disk whatever the build
# host's file system, umask, time zone, locale and host name. For each recipe named (all
# three by default), one build from Debian's mirror is locked and its packages exported;
# then, for each build host below, a fresh VMFILE_HOME on that file system imports the
# packages and runs `vmfile box build NAME --locked`, which installs the box only when its
# disk, kernel and initrd match the lock bit for bit. Each rebuild runs with umask 077,
# TZ=Pacific/Chatham, LC_ALL=C and another host name (a UTS namespace).
#   ext4:  a loop-mounted ext4 with its own random directory hash seed
#   tmpfs: memory, which lists a directory newest first
#   xfs, btrfs: loop-mounted, each with its own directory order and inode numbering
# It prints one line per rebuild and exits 1 on the first that does not match.
#   usage: [FILESYSTEMS="ext4 tmpfs xfs btrfs"] bench/reproducible.sh [RECIPE...]
#          (as root; needs Debian's mirror, loop devices)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
recipes=("$@")
[ "${#recipes[@]}" -gt 0 ] || recipes=(debian-11 debian-12 debian-13)
work=$(mktemp -d /var/tmp/vmfile-bench-reproducible.XXXXXX)
mounts=()
cleanup() {
  for m in "${mounts[@]}"; do umount "$m" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
vmfile() { node "$root/bin/vmfile.js" "$@"; }
# Another host, as far as a build can see: umask, time zone, locale, host name.
other_host() {
  TZ=Pacific/Chatham LC_ALL=C LANG=C unshare --uts sh -c 'hostname other-host && umask 077 && exec "$@"' sh "$@"
}

mount_home() { # FS DIR
  local fs=$1 dir=$2
  mkdir -p "$dir"
  case "$fs" in
    tmpfs) mount -t tmpfs -o size=12g,mode=0700 tmpfs "$dir" ;;
    ext4) truncate -s 12G "$dir.img"; mkfs.ext4 -q -E "hash_seed=$(cat /proc/sys/kernel/random/uuid)" "$dir.img"; mount -o loop "$dir.img" "$dir" ;;
    xfs) truncate -s 12G "$dir.img"; mkfs.xfs -q "$dir.img"; mount -o loop "$dir.img" "$dir" ;;
    btrfs) truncate -s 12G "$dir.img"; mkfs.btrfs -q "$dir.img" >/dev/null 2>&1; mount -o loop "$dir.img" "$dir" ;;
  esac
  mounts+=("$dir")
}

for recipe in "${recipes[@]}"; do
  project="$work/$recipe-project"
  mkdir "$project"
  printf "import { defineVm } from 'vmfile';\nexport default defineVm({ box: '%s' });\n" "$recipe" > "$project/Vmfile.ts"
  t0=$(date +%s)
  VMFILE_HOME="$work/$recipe-first" vmfile box build "$recipe" --version 1.0 >/dev/null 2>"$work/$recipe-first.log" || { cat "$work/$recipe-first.log" >&2; exit 1; }
  (cd "$project" && VMFILE_HOME="$work/$recipe-first" vmfile lock --update >/dev/null && VMFILE_HOME="$work/$recipe-first" vmfile lock export --output "$work/$recipe.tar" >/dev/null)
  locked=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1])).machines.default.sha256)' "$project/Vmfile.lock")
  count=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1])).machines.default.recipe.packages.length)' "$project/Vmfile.lock")
  echo "$recipe: built from the mirror on $(df --output=fstype "$work" | tail -1) in $(( $(date +%s) - t0 )) s, $count packages, disk sha256 $locked"
  rm -rf "$work/$recipe-first"
  for fs in ${FILESYSTEMS:-ext4 tmpfs xfs btrfs}; do
    home="$work/$recipe-$fs"
    mount_home "$fs" "$home"
    t0=$(date +%s)
    (cd "$project" && other_host env VMFILE_HOME="$home" node "$root/bin/vmfile.js" lock import "$work/$recipe.tar" >/dev/null)
    out=$(cd "$project" && other_host env VMFILE_HOME="$home" node "$root/bin/vmfile.js" box build "$recipe" --locked 2>"$home.log") || { echo "$recipe on $fs: the locked rebuild failed:" >&2; tail -20 "$home.log" >&2; exit 1; }
    case "$out" in *"sha256:$locked"*) ;; *) echo "$recipe on $fs: the rebuild did not match Vmfile.lock: $out" >&2; exit 1 ;; esac
    echo "$recipe: rebuilt on $fs (umask 077, TZ=Pacific/Chatham, LC_ALL=C, host other-host) in $(( $(date +%s) - t0 )) s: disk sha256 $locked, matches the lock"
    umount "$home"; rm -f "$home.img"
  done
done
echo "every rebuild matched its lock"

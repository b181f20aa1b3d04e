#!/usr/bin/env bash
# Builds the e2e image for root file system growth (as root), from build.sh's cloud image,
# in well under a minute, so that build.sh (whose hash keys every other test image) stays
# as it is:
#   xfs-gpt.qcow2  GPT with a BIOS boot partition and an xfs root as its last partition,
#                  grub for BIOS, cloud-init without growpart (cloud-guest-utils removed),
#                  sfdisk and xfsprogs: the root is not grown by the box's own tools.
# Nothing is mounted: the cloud image's root tree is read out with debugfs, and mkfs.xfs
# makes the file system from a prototype file (Debian 12's mkfs.xfs cannot take a
# directory). The prototype format has no sticky bit and no names with blanks or colons:
# systemd-tmpfiles sets /tmp's mode at boot, and the names left out (dpkg's files of
# multi-arch packages, a few man pages) are nothing a boot or the test needs.
# Usage: grow.sh IMAGES OUTDIR (IMAGES holds build.sh's cloud.qcow2).
set -euo pipefail
images=$1
out=$2
work=$(mktemp -d /var/tmp/vmfile-grow-image.XXXXXX)
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
mkdir -p "$out"
MiB=1048576

# The cloud image's root file system starts at 66 MiB (build.sh).
qemu-img convert -f qcow2 -O raw "$images/cloud.qcow2" "$work/cloud.raw"
ext4="$work/cloud.raw?offset=$((66 * MiB))"
mkdir "$work/root"
debugfs -R "rdump / $work/root" "$ext4" 2>/dev/null
t=$work/root
[ -x "$t/usr/bin/cloud-init" ] || { echo "grow.sh: no cloud-init in $images/cloud.qcow2's root" >&2; exit 1; }

# xfsprogs (the guest grows its own xfs), fdisk (sfdisk) in; growpart out. The initramfs
# (MODULES=most) already holds xfs.ko, so xfsprogs' trigger need not make it again (30 s).
conf=$t/etc/initramfs-tools/update-initramfs.conf
sed -i 's/^update_initramfs=.*/update_initramfs=no/' "$conf"
cp /etc/resolv.conf "$t/etc/resolv.conf"
chroot "$t" apt-get install -y -qq --no-install-recommends xfsprogs fdisk >/dev/null 2>&1
chroot "$t" dpkg --purge cloud-guest-utils >/dev/null
chroot "$t" apt-get clean
rm -f "$t/etc/resolv.conf"
sed -i 's/^update_initramfs=.*/update_initramfs=yes/' "$conf"
[ ! -e "$t/usr/bin/growpart" ] && [ -x "$t/usr/sbin/xfs_growfs" ] && [ -x "$t/usr/sbin/sfdisk" ]
sed -i 's/^insmod ext2$/insmod xfs/' "$t/boot/grub/grub.cfg"
echo 'LABEL=root / xfs defaults 0 0' >"$t/etc/fstab"

# The root tree as mkfs.xfs's prototype file. Modes come from the ext4 file system where
# it has the file: rdump's chown after chmod cleared every setuid and setgid bit (sudo's).
python3 - "$t" "$ext4" >"$work/proto" <<'PY'
import os, stat, subprocess, sys
root, image = sys.argv[1], sys.argv[2]
out = ['vmfile', '0 0']
skipped = []
dirs = [os.path.relpath(d, root) for d, _, _ in os.walk(root)]
commands = ''.join(f'ls -p "/{d if d != "." else ""}"\n' for d in dirs if '"' not in d)
listing = subprocess.run(['debugfs', '-f', '-', image], input=commands, capture_output=True, text=True, check=True).stdout
ext4_modes, here = {}, None
for line in listing.splitlines():
    if line.startswith('debugfs: ls -p "'):
        here = line[len('debugfs: ls -p "'):-1].rstrip('/')
    elif line.startswith('/') and here is not None:
        fields = line.split('/')
        if len(fields) >= 7:
            ext4_modes[f'{here}/{fields[5]}'] = int(fields[2], 8)
def mode(st, kind):
    m = st.st_mode
    original = ext4_modes.get('/' + os.path.relpath(st.path, root))
    if original is not None and stat.S_IFMT(original) == stat.S_IFMT(m):
        m = original
    return kind + ('u' if m & stat.S_ISUID else '-') + ('g' if m & stat.S_ISGID else '-') + format(m & 0o777, '03o')
class Stat:
    def __init__(self, path):
        s = os.lstat(path)
        self.path, self.st_mode, self.st_uid, self.st_gid = path, s.st_mode, s.st_uid, s.st_gid
def ok(name):
    return name and not any(c.isspace() or c in ':$' for c in name)
def walk(path):
    for name in sorted(os.listdir(path)):
        full = os.path.join(path, name)
        st = Stat(full)
        if not ok(name):
            skipped.append(full)
            continue
        ids = f'{st.st_uid} {st.st_gid}'
        if stat.S_ISDIR(st.st_mode):
            out.append(f'{name} {mode(st, "d")} {ids}')
            walk(full)
            out.append('$')
        elif stat.S_ISLNK(st.st_mode):
            target = os.readlink(full)
            if not ok(target.replace('/', 'x')):
                skipped.append(full)
                continue
            out.append(f'{name} {mode(st, "l")} {ids} {target}')
        elif stat.S_ISREG(st.st_mode):
            if not ok(full.replace('/', 'x')):
                skipped.append(full)
                continue
            out.append(f'{name} {mode(st, "-")} {ids} {full}')
st = Stat(root)
out.append(f'{mode(st, "d")} 0 0')
walk(root)
out.append('$')
print('\n'.join(out))
if skipped:
    print(f'grow.sh: left out {len(skipped)} names the prototype format cannot hold', file=sys.stderr)
PY

rm -f "$work/cloud.raw"

# The disk: 2 GiB, GPT (bios boot partition, root to 1 MiB short of the end).
raw=$work/xfs-gpt.raw
truncate -s 2G "$raw"
sfdisk -q "$raw" <<PARTS
label: gpt
start=2048, size=2048, type=21686148-6449-6E6F-744E-656564454649, name=bios
start=4096, size=$(( (2047 * MiB - 2 * MiB) / 512 )), type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=root
PARTS
truncate -s $((2047 * MiB - 2 * MiB)) "$work/root.xfs"
# bigtime and inobtcount off: what grub 2.06 surely reads, as RHEL 8's xfs roots are.
mkfs.xfs -q -L root -m bigtime=0,inobtcount=0 -p "$work/proto" "$work/root.xfs"
dd if="$work/root.xfs" of="$raw" bs=1M seek=2 conv=notrunc,sparse status=none

# grub for BIOS, as build.sh does it: core.img in the BIOS boot partition (with xfs), boot.img's code in the MBR.
le64() { local v=$1 i s=''; for i in 0 1 2 3 4 5 6 7; do s+=$(printf '\\x%02x' $(( (v >> (8 * i)) & 255 ))); done; printf "$s"; }
put() { dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }
printf 'search --no-floppy --label root --set=root\nset prefix=($root)/boot/grub\n' >"$work/early.cfg"
grub-mkimage -O i386-pc -c "$work/early.cfg" -p /boot/grub -o "$work/core.img" biosdisk part_gpt xfs search search_label normal configfile linux echo test
dd if="$work/core.img" of="$raw" bs=512 seek=2048 conv=notrunc status=none
le64 2049 | put "$raw" $((2048 * 512 + 500))
dd if=/usr/lib/grub/i386-pc/boot.img of="$raw" bs=440 count=1 conv=notrunc status=none
le64 2048 | put "$raw" 92

qemu-img convert -f raw -O qcow2 "$raw" "$out/xfs-gpt.qcow2.partial"
mv "$out/xfs-gpt.qcow2.partial" "$out/xfs-gpt.qcow2"

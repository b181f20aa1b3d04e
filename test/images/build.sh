#!/usr/bin/env bash
# Builds the e2e test images that boot themselves, from Debian's packages (as root). They
# Vagrant box. Neither has rsync, as official images often do not.
#   cloud.qcow2  GPT with a BIOS boot partition and an EFI system partition, grub for
#                both firmwares, cloud-init and growpart: boots under SeaBIOS and OVMF.
#   vagrant.box  a Vagrant libvirt box: MBR, grub, no cloud-init, user "vagrant" with
#                Vagrant's insecure public key and passwordless sudo, DHCP by
#                systemd-networkd, the QEMU guest agent (as Vagrant's libvirt boxes
#                mostly have), no apt sources (so nothing can be installed in it).
# Usage: build.sh OUTDIR. Writes OUTDIR/cloud.qcow2 and OUTDIR/vagrant.box.
set -euo pipefail
out=$1
insecure_pub=$(ls /usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant.pub | head -n1)
work=$(mktemp -d /var/tmp/vmfile-images.XXXXXX)
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
mkdir -p "$out"

base_packages=systemd-sysv,udev,dbus,openssh-server,linux-image-cloud-amd64,ifupdown,isc-dhcp-client,sudo,netbase,iproute2,e2fsprogs,locales,qemu-guest-agent
# One debootstrap: the tree is copied out as the Vagrant box's root before cloud-init
# goes in, so both images share every other package.
# The cloud image keeps apt's package lists, as if apt-get update had run in it: then
# vmfile's installing rsync (the default folder) is one apt-get install, not a download
# of the whole index under software emulation. The locale cloud-init sets is generated
# here, as in distributions' images, not at first boot.
mmdebstrap --variant=minbase --include="$base_packages" --skip=cleanup/apt/lists \
  --customize-hook="mkdir $work/vagrant-root && cp -a --one-file-system \"\$1\"/. $work/vagrant-root/" \
  --customize-hook='chroot "$1" apt-get install -y --no-install-recommends cloud-init cloud-guest-utils' \
  --customize-hook='chroot "$1" systemctl disable apt-daily.timer apt-daily-upgrade.timer' \
  --customize-hook='sed -i "s/^# *en_US.UTF-8 UTF-8/en_US.UTF-8 UTF-8/" "$1"/etc/locale.gen && chroot "$1" locale-gen && echo LANG=en_US.UTF-8 >"$1"/etc/default/locale' \
  --customize-hook='rm -f "$1"/etc/ssh/ssh_host_*' \
  bookworm "$work/cloud-root" http://deb.debian.org/debian

kernel_of() { (cd "$1/boot" && ls vmlinuz-* | head -n1); }
grub_cfg() { # root tree
  local kernel; kernel=$(kernel_of "$1")
  mkdir -p "$1/boot/grub"
  cat >"$1/boot/grub/grub.cfg" <<CFG
set timeout=0
insmod part_gpt
insmod part_msdos
insmod ext2
search --no-floppy --label root --set=root
linux /boot/$kernel root=LABEL=root ro console=ttyS0
initrd /boot/initrd.img-${kernel#vmlinuz-}
boot
CFG
  echo 'LABEL=root / ext4 defaults 0 1' >"$1/etc/fstab"
  : >"$1/etc/machine-id"
}

# Partition devices do not appear for loop devices here (no partition scan, no vfat in
# the kernel), so nothing is mounted: the root file system is made from the tree with
# mke2fs -d, the EFI system partition with mtools, and grub's images are written to
# their sectors by hand, as grub-install would (boot.img in the MBR pointing at
# core.img, whose first sector lists where the rest of it lies).
MiB=1048576
le64() { local v=$1 i out=''; for i in 0 1 2 3 4 5 6 7; do out+=$(printf '\\x%02x' $(( (v >> (8 * i)) & 255 ))); done; printf "$out"; }
put() { dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }

grub_images() { # tree: early config finds the root file system by label on either firmware
  local early=$work/early.cfg mods='part_gpt part_msdos ext2 search search_label normal configfile linux echo test'
  printf 'search --no-floppy --label root --set=root\nset prefix=($root)/boot/grub\n' >"$early"
  grub-mkimage -O i386-pc -c "$early" -p /boot/grub -o "$work/core.img" biosdisk $mods
  grub-mkimage -O x86_64-efi -c "$early" -p /boot/grub -o "$work/BOOTX64.EFI" $mods
  cp -r /usr/lib/grub/i386-pc /usr/lib/grub/x86_64-efi "$1/boot/grub/"
}

image() { # tree raw gpt|dos
  local tree=$1 raw=$2 table=$3 root_start core_lba
  grub_images "$tree"
  truncate -s 2G "$raw"
  if [ "$table" = gpt ]; then
    root_start=$((66 * MiB)); core_lba=2048
    sfdisk -q "$raw" <<PARTS
label: gpt
start=2048, size=2048, type=21686148-6449-6E6F-744E-656564454649, name=bios
start=4096, size=131072, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=esp
start=135168, size=$(( (2047 * MiB - 66 * MiB) / 512 )), type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=root
PARTS
    mkfs.vfat -C "$work/esp.img" 65536 >/dev/null
    mmd -i "$work/esp.img" ::/EFI ::/EFI/BOOT
    mcopy -i "$work/esp.img" "$work/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI
    dd if="$work/esp.img" of="$raw" bs=1M seek=2 conv=notrunc,sparse status=none
  else
    root_start=$((1 * MiB)); core_lba=1
    sfdisk -q "$raw" <<PARTS
label: dos
start=2048, type=83, bootable
PARTS
  fi
  rm -f "$work/root.ext4"
  # 1 MiB short of the disk's end, where GPT keeps its backup table.
  mke2fs -q -t ext4 -L root -d "$tree" "$work/root.ext4" $(( (2047 * MiB - root_start) / 1024 ))k
  dd if="$work/root.ext4" of="$raw" bs=1M seek=$((root_start / MiB)) conv=notrunc,sparse status=none
  # core.img at core_lba; its first sector (diskboot) reads the rest from core_lba + 1.
  dd if="$work/core.img" of="$raw" bs=512 seek="$core_lba" conv=notrunc status=none
  le64 $((core_lba + 1)) | put "$raw" $((core_lba * 512 + 500))
  # boot.img's code (not the partition table) into the MBR, told where core.img starts.
  dd if=/usr/lib/grub/i386-pc/boot.img of="$raw" bs=440 count=1 conv=notrunc status=none
  le64 "$core_lba" | put "$raw" 92
}

# The cloud image.
grub_cfg "$work/cloud-root"
image "$work/cloud-root" "$work/cloud.raw" gpt
qemu-img convert -f raw -O qcow2 "$work/cloud.raw" "$out/cloud.qcow2.partial"
mv "$out/cloud.qcow2.partial" "$out/cloud.qcow2"

# The Vagrant box.
v=$work/vagrant-root
grub_cfg "$v"
chroot "$v" useradd --create-home --shell /bin/bash vagrant
install -d -m 0700 -o 1000 -g 1000 "$v/home/vagrant/.ssh"
install -m 0600 -o 1000 -g 1000 "$insecure_pub" "$v/home/vagrant/.ssh/authorized_keys"
echo 'vagrant ALL=(ALL) NOPASSWD:ALL' >"$v/etc/sudoers.d/vagrant"
chmod 0440 "$v/etc/sudoers.d/vagrant"
echo vagrant-box >"$v/etc/hostname"
printf '[Match]\nName=en* eth*\n\n[Network]\nDHCP=yes\n' >"$v/etc/systemd/network/80-dhcp.network"
chroot "$v" systemctl enable systemd-networkd >/dev/null 2>&1
chroot "$v" systemctl disable apt-daily.timer apt-daily-upgrade.timer >/dev/null 2>&1 || true
rm -rf "$v"/etc/apt/sources.list "$v"/etc/apt/sources.list.d/* "$v"/etc/resolv.conf "$v"/var/lib/apt/lists/*
image "$v" "$work/vagrant.raw" dos
mkdir "$work/box"
qemu-img convert -f raw -O qcow2 "$work/vagrant.raw" "$work/box/box.img"
echo '{"provider":"libvirt","format":"qcow2","virtual_size":2}' >"$work/box/metadata.json"
printf 'Vagrant.configure("2") do |config|\n  config.vm.provider :libvirt do |libvirt|\n    libvirt.driver = "kvm"\n  end\nend\n' >"$work/box/Vagrantfile"
tar -czf "$out/vagrant.box.partial" -C "$work/box" metadata.json Vagrantfile box.img
mv "$out/vagrant.box.partial" "$out/vagrant.box"

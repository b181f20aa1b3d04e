#!/usr/bin/env bash
# Installs everything vmfile needs on a Debian 12 machine and builds it:
# Debian packages (when run as root), npm dependencies, the TypeScript build.
set -euo pipefail
cd "$(dirname "$0")/.."

# ovmf: UEFI boxes. grub-pc-bin: the boot loader of boxes packaged for Vagrant. grub-*-bin, fdisk,
# dosfstools, mtools, xfsprogs: the e2e tests build boot images. xfsprogs, btrfs-progs, acl: a box's
# image is checked to come out the same when built on xfs or btrfs, from files with ACLs.
# iproute2: the libvirt e2e tests' network namespace (ip netns). zsh: the completion tests.
# ruby: vmfile init --from runs a Vagrantfile (Ruby) to convert it.
packages=(ruby qemu-system-x86 qemu-utils ovmf mmdebstrap e2fsprogs zerofree openssh-client rsync git ansible-core tar ca-certificates grub-pc-bin grub-efi-amd64-bin fdisk dosfstools mtools xfsprogs btrfs-progs acl iproute2 zsh)
# vagrant: Vagrant's insecure key (the first login to a Vagrant box); with vagrant-libvirt and
# dnsmasq-base (its management network's DHCP), the e2e test that Vagrant boots the boxes
# vmfile package writes for it. Without their recommends. libvirt, genisoimage and an sshd:
# the libvirt provider, and its e2e tests' libvirt host (local and over qemu+ssh://).
lean_packages=(vagrant vagrant-libvirt dnsmasq-base libvirt-daemon-system libvirt-clients genisoimage openssh-server)
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
missing=()
for pkg in "${packages[@]}"; do installed "$pkg" || missing+=("$pkg"); done
missing_lean=()
for pkg in "${lean_packages[@]}"; do installed "$pkg" || missing_lean+=("$pkg"); done
if [ "$(( ${#missing[@]} + ${#missing_lean[@]} ))" -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "==> installing Debian packages: ${missing[*]} ${missing_lean[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    [ "${#missing[@]}" -eq 0 ] || apt-get install -y -qq "${missing[@]}" >/dev/null
    [ "${#missing_lean[@]}" -eq 0 ] || apt-get install -y -qq --no-install-recommends "${missing_lean[@]}" >/dev/null
  else
    echo "missing Debian packages: ${missing[*]} ${missing_lean[*]}" >&2
    echo "run as root, or: sudo apt-get install ${missing[*]} ${missing_lean[*]}" >&2
    exit 1
  fi
fi

echo "==> installing npm dependencies"
npm ci --no-audit --no-fund --loglevel=error
echo "==> building"
npm run build --silent

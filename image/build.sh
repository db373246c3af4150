#!/usr/bin/env bash
# image/build.sh: builds the Coyote server image (image/README.md). Run as root:
#
#   image/build.sh [options] [-- install.sh flags]
#
# From a Debian 12 root (a tarball, or one made with debootstrap and cached), in a Docker engine
# (DOCKER_HOST is honoured): the root imported, a container started from it with this checkout's
# files, `install.sh --no-start` run inside with the flags after `--`, the container exported as
# <out>/coyote-<release>.tar and imported as the image coyote/server:<release>; with --qcow2, the
# same tree as a bootable disk, <out>/coyote-<release>.qcow2. Nothing is started in the image: a
# machine made from it only boots.
set -euo pipefail

here="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)"
checkout="$(dirname "$here")"

say() { printf 'build: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

usage() {
  cat <<'EOF'
Usage: image/build.sh [options] [-- install.sh flags]     (as root)

  --root-tarball FILE  the Debian 12 root to start from (default: made with debootstrap, cached)
  --mirror URL         Debian's archive for debootstrap (default: http://deb.debian.org/debian)
  --cache DIR          where a root made with debootstrap is cached (default: /var/cache/coyote-image)
  --out DIR            where the tarball and the disk go (default: /var/tmp/coyote-image)
  --network NAME       the Docker network the build container joins (default: the engine's)
  --proxy URL          http_proxy and https_proxy for the install inside (Debian's archive, npm)
  --ca-file FILE       an authority to trust while installing (an egress proxy that speaks TLS);
                       may be repeated; removed from the image before it is exported
  --qcow2              also make a bootable disk (kernel, GRUB, cloud-init) with qemu-img
  --disk-size MB       the disk's size (default: what the tree needs plus 1 GB)
  -h, --help           this text

The flags after -- go to install.sh, which always runs with --no-start
(e.g. -- --private --no-docker --hostname box.example.org).
EOF
}

root_tarball="" mirror="http://deb.debian.org/debian" cache="/var/cache/coyote-image"
out="/var/tmp/coyote-image" network="" proxy="" qcow2=no disk_mb=""
ca_files=()
while [ $# -gt 0 ]; do
  case "$1" in
    --root-tarball) root_tarball="${2:?--root-tarball needs a file}"; shift 2 ;;
    --mirror) mirror="${2:?--mirror needs a URL}"; shift 2 ;;
    --cache) cache="${2:?--cache needs a folder}"; shift 2 ;;
    --out) out="${2:?--out needs a folder}"; shift 2 ;;
    --network) network="${2:?--network needs a name}"; shift 2 ;;
    --proxy) proxy="${2:?--proxy needs a URL}"; shift 2 ;;
    --ca-file) ca_files+=("${2:?--ca-file needs a file}"); shift 2 ;;
    --qcow2) qcow2=yes; shift ;;
    --disk-size) disk_mb="${2:?--disk-size needs a size in MB}"; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    --) shift; break ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
done
install_flags=("$@")

# ------------------------------------------------------------------------------------- checks
[ "$(id -u)" = 0 ] || die "run as root (debootstrap, mke2fs -d and the engine need it)"
case "$mirror" in http://* | https://*) ;; *) die "--mirror: not an http(s) URL: $mirror" ;; esac
case "$proxy" in "" | http://* | https://*) ;; *) die "--proxy: not an http(s) URL: $proxy" ;; esac
case "$network" in "" | [A-Za-z0-9]*) ;; *) die "--network: not a Docker network name: $network" ;; esac
case "$disk_mb" in "" | [1-9] | [1-9][0-9]*) ;; *) die "--disk-size: not a number of MB: $disk_mb" ;; esac
if [ -n "$root_tarball" ] && [ ! -f "$root_tarball" ]; then die "--root-tarball: no such file: $root_tarball"; fi
for file in "${ca_files[@]}"; do
  grep -q -- '-----BEGIN CERTIFICATE-----' "$file" 2>/dev/null || die "--ca-file: not a PEM certificate: $file"
done
for program in docker tar timeout; do command -v "$program" >/dev/null || die "$program is missing"; done
if [ "$qcow2" = yes ]; then
  for program in qemu-img mke2fs sfdisk grub-mkimage; do
    command -v "$program" >/dev/null || die "$program is missing (apt-get install qemu-utils e2fsprogs fdisk grub-pc-bin)"
  done
  [ -f /usr/lib/grub/i386-pc/boot.img ] || die "GRUB's i386-pc modules are missing (apt-get install grub-pc-bin)"
fi
timeout 30 docker version >/dev/null 2>&1 || die "the Docker engine does not answer (DOCKER_HOST=${DOCKER_HOST:-its default})"

# Runs a step with a deadline; its failure names the step, and a timeout says so.
step() {
  local seconds="$1" what="$2" status=0
  shift 2
  timeout --kill-after=10 "$seconds" "$@" || status=$?
  [ "$status" -eq 0 ] && return 0
  [ "$status" -eq 124 ] || [ "$status" -eq 137 ] && die "$what: timed out after ${seconds}s"
  die "$what: failed (exit $status; its output is above)"
}

# ------------------------------------------------------------------------------- the clean-up
container="coyote-image-build-$$-$RANDOM"
root_image="coyote-build/debian-12:$$-$RANDOM"
work=""
cleanup() {
  local status=$?
  timeout 120 docker rm --force --volumes "$container" >/dev/null 2>&1 || true
  timeout 120 docker rmi "$root_image" >/dev/null 2>&1 || true
  if [ -n "$work" ]; then rm -rf "$work"; fi
  [ "$status" -eq 0 ] || say "the build failed; the container and the work folder are removed"
}
trap cleanup EXIT
mkdir -p "$out"
out="$(cd "$out" && pwd)"
work="$(mktemp -d "$out/.build-XXXXXX")"

# ------------------------------------------------------------------------------ the Debian root
# What a Debian 12 cloud VM has beside `minbase`, and nothing the installer brings itself; the
# same root as the installer's tests make (integration/src/install/debian-root.ts).
root_packages="systemd,systemd-sysv,dbus,ca-certificates,curl,wget,iproute2,procps,sudo,gnupg"
sources='Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg'
customize='set -eu
rm -f /etc/apt/sources.list
systemctl mask getty.target console-getty.service getty@tty1.service serial-getty@ttyS0.service
echo debian > /etc/hostname
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt/* /var/log/dpkg.log /etc/machine-id /var/lib/dbus/machine-id
: > /etc/machine-id'

debootstrap_root() {
  command -v debootstrap >/dev/null || die "debootstrap is missing (apt-get install debootstrap), or give --root-tarball"
  local key tarball dir
  key="$(printf '%s\n' "$mirror" "$root_packages" "$sources" "$customize" | sha256sum | cut -c1-16)"
  tarball="$cache/debian-12-$key.tar"
  if [ -f "$tarball" ]; then root_tarball="$tarball"; return; fi
  mkdir -p "$cache"
  dir="$(mktemp -d "$cache/build-XXXXXX")"
  say "making a Debian 12 root with debootstrap from $mirror (a few minutes)"
  step 1800 "debootstrap of a Debian 12 root from $mirror" debootstrap --variant=minbase --include="$root_packages" bookworm "$dir/root" "$mirror" >&2
  printf '%s\n' "$sources" > "$dir/root/etc/apt/sources.list.d/debian.sources"
  step 120 "customizing the Debian root" chroot "$dir/root" /bin/sh -c "$customize"
  step 600 "packing the Debian root" tar --numeric-owner --xattrs --acls -C "$dir/root" -cf "$dir/root.tar" .
  mv "$dir/root.tar" "$tarball"
  rm -rf "$dir"
  root_tarball="$tarball"
}
[ -n "$root_tarball" ] || debootstrap_root

# ---------------------------------------------------------------------------- the container
say "importing the Debian root $root_tarball"
step 600 "importing the Debian root into the engine" docker import "$root_tarball" "$root_image" >/dev/null
run_args=(--detach --name "$container")
[ -n "$network" ] && run_args+=(--network "$network")
step 300 "starting the build container" docker run "${run_args[@]}" "$root_image" /bin/sleep infinity >/dev/null

# The checkout's files: what git knows (tracked and new, not ignored), or every file but what a
# build or a run makes.
checkout_files() {
  if git -C "$checkout" rev-parse --git-dir >/dev/null 2>&1; then
    git -C "$checkout" ls-files -z --cached --others --exclude-standard | (cd "$checkout" && while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done)
  else
    (cd "$checkout" && find . \( -name node_modules -o -name dist -o -name '.coyote*' -o -name .git -o -name .next \) -prune -o -type f -print0 | sed -z 's|^\./||')
  fi
}
say "copying the checkout into the build container"
step 60 "making /root/coyote in the build container" docker exec "$container" mkdir -p /root/coyote
checkout_files > "$work/files"
[ -s "$work/files" ] || die "no files found in the checkout $checkout"
step 300 "packing the checkout" tar -C "$checkout" --owner=0 --group=0 --numeric-owner --null -T "$work/files" -cf "$work/checkout.tar"
step 300 "copying the checkout into the build container" docker cp "$work/checkout.tar" "$container:/root/checkout.tar"
step 300 "unpacking the checkout in the build container" docker exec "$container" tar -C /root/coyote -xf /root/checkout.tar
rm -f "$work/checkout.tar"

exec_env=(--env DEBIAN_FRONTEND=noninteractive)
if [ -n "$proxy" ]; then
  for variable in http_proxy https_proxy HTTP_PROXY HTTPS_PROXY; do exec_env+=(--env "$variable=$proxy"); done
fi
if [ "${#ca_files[@]}" -gt 0 ]; then
  say "trusting ${#ca_files[@]} extra authorities while installing"
  index=0
  for file in "${ca_files[@]}"; do
    step 60 "copying the authority $file into the build container" docker cp "$file" "$container:/usr/local/share/ca-certificates/coyote-build-$index.crt"
    index=$((index + 1))
  done
  step 120 "trusting the extra authorities (update-ca-certificates)" docker exec "$container" update-ca-certificates >&2
  exec_env+=(--env NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt)
fi

# ------------------------------------------------------------------------------- the install
say "running install.sh --no-start ${install_flags[*]} (several minutes)"
step 3600 "install.sh in the build container" docker exec "${exec_env[@]}" "$container" bash /root/coyote/install.sh --no-start "${install_flags[@]}" >&2
current="$(timeout 60 docker exec "$container" readlink /opt/coyote/current)" || die "reading /opt/coyote/current in the build container failed"
release="${current#releases/}"
[[ "$release" =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] || die "install.sh left /opt/coyote/current pointing at ${current:-nothing}, not at a release"
say "release $release installed"

# What a virtual machine needs beside the box: a kernel, cloud-init (which reads the user-data,
# sets up the network and the admin's SSH keys), DHCP, and growpart for a disk made bigger.
vm_packages=(linux-image-cloud-amd64 cloud-init cloud-guest-utils e2fsprogs ifupdown isc-dhcp-client openssh-server)
if [ "$qcow2" = yes ]; then
  say "installing what a virtual machine boots with: ${vm_packages[*]}"
  # shellcheck disable=SC2016 # expanded inside the container
  step 1800 "installing the virtual machine's packages (${vm_packages[*]})" docker exec "${exec_env[@]}" "$container" \
    bash -c 'printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d
      apt-get update -q >&2 && apt-get install -y -q --no-install-recommends "$@" >&2; status=$?
      rm -f /usr/sbin/policy-rc.d; exit $status' bash "${vm_packages[@]}"
  # The SSH host keys are removed below: each machine makes its own before sshd first starts
  # (cloud-init makes them too when it runs; ssh-keygen -A only makes the missing ones).
  step 60 "making sshd make its host keys at boot" docker exec "$container" bash -c \
    'mkdir -p /etc/systemd/system/ssh.service.d && printf "[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n" > /etc/systemd/system/ssh.service.d/host-keys.conf'
fi

# What is the build's and not the box's: the checkout copy, caches, package lists, SSH host keys
# (each machine makes its own at first boot), the build network's authorities, and the activation
# token (each machine's first-boot `coyote setup` makes its own: one in the image would be known to
# everyone who has the image). coyote.target is disabled: the box starts once the first boot has
# given it its hostname (image/cloud-init/user-data.yaml.in).
step 300 "removing the build's leftovers from the image" docker exec "$container" bash -c \
  'set -e; rm -rf /root/coyote /root/checkout.tar /root/.npm /root/.cache /var/lib/apt/lists/* /var/cache/apt/*.bin /etc/ssh/ssh_host_*
   rm -f /var/lib/coyote/secrets/activation-token
   systemctl disable coyote.target >/dev/null 2>&1
   : > /etc/machine-id
   if ls /usr/local/share/ca-certificates/coyote-build-*.crt >/dev/null 2>&1; then
     rm -f /usr/local/share/ca-certificates/coyote-build-*.crt; update-ca-certificates --fresh >/dev/null
   fi'
step 60 "stopping the build container" docker stop --time 5 "$container" >/dev/null

# ------------------------------------------------------------------------ tarball and image
tarball="$out/coyote-$release.tar"
say "exporting the container to $tarball"
step 1800 "exporting the build container (docker export)" docker export --output "$tarball.partial" "$container"
mv -f "$tarball.partial" "$tarball"
step 1800 "importing $tarball as coyote/server:$release" docker import \
  --change 'CMD ["/sbin/init"]' --change 'ENV container=docker' \
  "$tarball" "coyote/server:$release" >/dev/null
say "image coyote/server:$release"

# ------------------------------------------------------------------------------------ qcow2
# A disk with one ext4 partition made from the tree (mke2fs -d, straight into the raw file at the
# partition's offset), GRUB written into its first megabyte from the files grub-mkimage makes:
# no loop device, no mount.
make_disk() {
  local tree="$work/tree" raw="$work/disk.raw" uuid kernel initrd tree_mb size_mb
  mkdir -p "$tree"
  step 1800 "unpacking $tarball for the disk" tar --numeric-owner --xattrs --xattrs-include='*' -C "$tree" -xpf "$tarball"
  kernel="$(find "$tree/boot" -maxdepth 1 -name 'vmlinuz-*' -printf '%f\n' 2>/dev/null | sort -V | tail -n 1)"
  [ -n "$kernel" ] || die "no kernel in the image's /boot (linux-image-cloud-amd64 did not install one)"
  initrd="initrd.img-${kernel#vmlinuz-}"
  [ -f "$tree/boot/$initrd" ] || die "no initramfs $initrd in the image's /boot"
  uuid="$(cat /proc/sys/kernel/random/uuid)"

  # A container's files a machine has in its own way.
  rm -f "$tree/.dockerenv"
  echo coyote > "$tree/etc/hostname"
  printf '127.0.0.1\tlocalhost\n127.0.1.1\tcoyote\n::1\tlocalhost ip6-localhost ip6-loopback\n' > "$tree/etc/hosts"
  rm -f "$tree/etc/resolv.conf" && : > "$tree/etc/resolv.conf"
  printf 'UUID=%s\t/\text4\terrors=remount-ro,discard\t0\t1\n' "$uuid" > "$tree/etc/fstab"
  # The consoles a virtual machine has (masked in the root, which is made for containers).
  for unit in getty.target console-getty.service getty@tty1.service serial-getty@ttyS0.service; do
    if [ "$(readlink "$tree/etc/systemd/system/$unit" 2>/dev/null)" = /dev/null ]; then rm -f "$tree/etc/systemd/system/$unit"; fi
  done
  printf 'auto lo\niface lo inet loopback\n\nsource /etc/network/interfaces.d/*\n' > "$tree/etc/network/interfaces"
  mkdir -p "$tree/boot/grub"
  cat > "$tree/boot/grub/grub.cfg" <<EOF
set timeout=1
serial --unit=0 --speed=115200
terminal_input console serial
terminal_output console serial
search --no-floppy --fs-uuid --set=root $uuid
menuentry "Coyote" {
  linux /boot/$kernel root=UUID=$uuid ro console=tty0 console=ttyS0,115200 net.ifnames=0
  initrd /boot/$initrd
}
EOF

  tree_mb="$(du -sm "$tree" | cut -f1)"
  size_mb="${disk_mb:-$((tree_mb * 12 / 10 + 1024))}"
  [ "$size_mb" -gt "$((tree_mb + 64))" ] || die "--disk-size $size_mb MB is too small for the tree ($tree_mb MB)"
  say "making a ${size_mb} MB disk (the tree is ${tree_mb} MB)"
  step 60 "making the raw disk file" truncate -s "${size_mb}M" "$raw"
  printf 'label: dos\nstart=2048, type=83, bootable\n' | step 60 "writing the disk's partition table (sfdisk)" sfdisk --quiet "$raw"
  # GRUB 2.06 cannot read an ext4 with orphan_file or metadata_csum_seed (mke2fs 1.47's defaults).
  step 1800 "making the ext4 file system from the tree (mke2fs -d)" mke2fs -q -F -t ext4 -L coyote-root -U "$uuid" \
    -O '^orphan_file,^metadata_csum_seed' -E offset=1048576 -d "$tree" "$raw" "$(((size_mb - 1) * 1024))k"
  # The core finds the file system by its UUID, whichever disk the firmware numbers first.
  # shellcheck disable=SC2016 # GRUB's variable
  printf 'search --no-floppy --fs-uuid --set=root %s\nset prefix=($root)/boot/grub\n' "$uuid" > "$work/early.cfg"
  step 120 "making GRUB's core image (grub-mkimage)" grub-mkimage -O i386-pc -d /usr/lib/grub/i386-pc -c "$work/early.cfg" \
    -o "$work/core.img" -p '(hd0,msdos1)/boot/grub' biosdisk part_msdos ext2 search_fs_uuid search normal linux serial terminal echo configfile
  local core_sectors
  core_sectors="$((($(stat -c %s "$work/core.img") + 511) / 512))"
  [ "$core_sectors" -lt 2047 ] || die "GRUB's core image ($core_sectors sectors) does not fit before the partition"
  # The boot sector's code (its first 440 bytes, keeping the partition table), then the core image
  # from sector 1: boot.img loads the sector its kernel-sector field names (1), and the core's first
  # sector reads the rest from the sectors after it, the blocklist grub-mkimage wrote.
  step 60 "writing GRUB's boot sector" dd if=/usr/lib/grub/i386-pc/boot.img of="$raw" bs=440 count=1 conv=notrunc status=none
  step 60 "writing GRUB's core image" dd if="$work/core.img" of="$raw" bs=512 seek=1 conv=notrunc status=none
  rm -rf "$tree"
  local disk="$out/coyote-$release.qcow2"
  say "converting the disk to $disk"
  step 1800 "converting the disk to qcow2 (qemu-img convert)" qemu-img convert -f raw -O qcow2 "$raw" "$disk.partial"
  mv -f "$disk.partial" "$disk"
  rm -f "$raw"
}
[ "$qcow2" = yes ] && make_disk

if [ "$qcow2" = yes ]; then say "done: $tarball, coyote/server:$release, $out/coyote-$release.qcow2"; else say "done: $tarball, coyote/server:$release"; fi
printf '%s\n' "$release"

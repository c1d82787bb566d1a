#!/usr/bin/env bash
# Sets up the migration lab: QEMU 10.x (Debian bookworm-backports) and the guest image (Debian kernel,
# busybox-static initramfs, our dirtier), all unpacked with dpkg-deb -x into a cache outside the
# repository, keyed by package versions; nothing is installed system-wide.
#
#   hack/lab/setup.sh              # set up if missing; print the path of the lab manifest (lab.env)
#   hack/lab/setup.sh --refresh    # ask apt again for the newest versions (new cache keys if they changed)
#
# The manifest ($LIVEMIG_CACHE/lab/lab.env, default ~/.cache/livemig/lab/lab.env) is what livemig.lab reads.
# A cached run does no network access and takes well under a second; the guest is rebuilt when
# operator/livemig/lab/guest/* or this directory changes.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
guest_src=$repo/operator/livemig/lab/guest
cache_root=${LIVEMIG_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/livemig}
lab=$cache_root/lab
manifest=$lab/lab.env
versions=$lab/versions.env   # the resolved package versions (the cache keys)
refresh=0
[[ ${1:-} == --refresh ]] && refresh=1

log() { echo "lab setup: $*" >&2; }
die() { echo "lab setup: error: $*" >&2; exit 1; }

mkdir -p "$lab/debs"

# ---- 1. resolve versions (only when not cached, or --refresh) --------------------------------------
backports_source=/etc/apt/sources.list.d/livemig-backports.sources
apt_ready() { [[ $(apt-cache madison qemu-system-x86 2>/dev/null) == *bookworm-backports* ]]; }
ensure_backports() {
  apt_ready && return 0
  [[ $(id -u) == 0 ]] || die "bookworm-backports is not an apt source here; as root, run this script once (it adds $backports_source)"
  local mirror
  mirror=$(grep -rhoE '^URIs: *http[^ ]*/debian/?$' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1 | awk '{print $2}')
  if [[ -z $mirror ]]; then
    mirror=$(grep -rhoE '^deb +\S+/debian/? +bookworm ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
      | head -1 | awk '{print $2}')
  fi
  mirror=${mirror:-http://deb.debian.org/debian}
  log "adding $backports_source ($mirror bookworm-backports main)"
  printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$mirror" >"$backports_source"
  apt-get update -qq >&2
  apt_ready || die "apt still offers no qemu-system-x86 from bookworm-backports"
}

resolve_versions() {
  ensure_backports
  # The closure apt would install for QEMU 10 (libraries missing here included), as "name=version" lines.
  local qemu_set
  qemu_set=$(apt-get -s install --no-install-recommends -t bookworm-backports qemu-system-x86 2>/dev/null \
    | awk '/^Inst /{gsub(/\(/,"",$3); print $2"="$3}')
  grep -q '^qemu-system-x86=1:10\.' <<<"$qemu_set" || die "apt does not resolve qemu-system-x86 10.x: $qemu_set"
  local kernel_pkg kernel_ver busybox_ver
  kernel_pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}')
  [[ -n $kernel_pkg ]] || die "cannot resolve linux-image-amd64 to a kernel package"
  kernel_ver=$(apt-cache policy "$kernel_pkg" | awk '/Candidate:/{print $2}')
  busybox_ver=$(apt-cache policy busybox-static | awk '/Candidate:/{print $2}')
  {
    echo "QEMU_VERSION='$(sed -n 's/^qemu-system-x86=//p' <<<"$qemu_set")'"
    echo "QEMU_PACKAGES='$(tr '\n' ' ' <<<"$qemu_set")'"
    echo "KERNEL_PACKAGE='$kernel_pkg'"
    echo "KERNEL_VERSION='$kernel_ver'"
    echo "BUSYBOX_VERSION='$busybox_ver'"
  } >"$versions.tmp"
  mv "$versions.tmp" "$versions"
}

if [[ $refresh == 1 || ! -s $versions ]]; then
  resolve_versions
fi
# shellcheck source=/dev/null
source "$versions"

fetch() {  # fetch NAME=VERSION -> path of the .deb in the cache
  local spec=$1 name=${1%%=*} version=${1#*=}
  local file
  file=$(ls "$lab/debs/${name}_${version//:/%3a}_"*.deb 2>/dev/null | head -1 || true)
  if [[ -z $file ]]; then
    ensure_backports
    (cd "$lab/debs" && apt-get download -qq -o APT::Sandbox::User="$(id -un)" "$spec" >&2) || die "apt-get download $spec failed"
    file=$(ls "$lab/debs/${name}_${version//:/%3a}_"*.deb | head -1)
  fi
  echo "$file"
}

safe() { printf '%s' "$1" | tr -c 'A-Za-z0-9.+~-' '_'; }

# ---- 2. QEMU 10 + its missing libraries + firmware ---------------------------------------------------
qemu_dir=$lab/qemu-$(safe "$QEMU_VERSION")
if [[ ! -x $qemu_dir/root/usr/bin/qemu-system-x86_64 || ! -e $qemu_dir/.done ]]; then
  log "unpacking QEMU $QEMU_VERSION into $qemu_dir"
  rm -rf "$qemu_dir" && mkdir -p "$qemu_dir/root" "$qemu_dir/share"
  for spec in $QEMU_PACKAGES; do
    deb=$(fetch "$spec")
    dpkg-deb -x "$deb" "$qemu_dir/root"
  done
  # Firmware directory for -L: QEMU's own data files plus seabios' and ipxe's (Debian's build looks for
  # those in /usr/share/seabios and /usr/lib/ipxe/qemu, which are not installed here).
  cp -a "$qemu_dir/root/usr/share/qemu/." "$qemu_dir/share/"
  for firmware in "$qemu_dir/root/usr/share/seabios"/* "$qemu_dir/root/usr/lib/ipxe/qemu"/*; do
    [[ -e $firmware && ! -e $qemu_dir/share/$(basename "$firmware") ]] && ln -s "$firmware" "$qemu_dir/share/"
  done
  touch "$qemu_dir/.done"
fi
qemu_bin=$qemu_dir/root/usr/bin/qemu-system-x86_64
qemu_libs=$qemu_dir/root/usr/lib/x86_64-linux-gnu:$qemu_dir/root/lib/x86_64-linux-gnu
missing=$(LD_LIBRARY_PATH=$qemu_libs ldd "$qemu_bin" | grep 'not found' || true)
[[ -z $missing ]] || die "QEMU misses libraries: $missing"

# ---- 3. kernel (unpacked, not installed) -------------------------------------------------------------
kernel_dir=$lab/kernel-$(safe "$KERNEL_PACKAGE-$KERNEL_VERSION")
if [[ ! -s $kernel_dir/vmlinuz ]]; then
  log "unpacking $KERNEL_PACKAGE $KERNEL_VERSION"
  rm -rf "$kernel_dir" && mkdir -p "$kernel_dir/x"
  deb=$(fetch "$KERNEL_PACKAGE=$KERNEL_VERSION")
  # Only the kernel image is needed (no modules: the guest has no devices that need them).
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$kernel_dir/x" --wildcards './boot/vmlinuz-*'
  cp "$kernel_dir"/x/boot/vmlinuz-* "$kernel_dir/vmlinuz.tmp" && mv "$kernel_dir/vmlinuz.tmp" "$kernel_dir/vmlinuz"
  rm -rf "$kernel_dir/x"
fi

# ---- 4. guest initramfs: busybox-static + our dirtier -----------------------------------------------
gcc_version=$(gcc -dumpfullversion 2>/dev/null || gcc -dumpversion)
guest_key=$(cat "$guest_src/dirtier.c" "$guest_src/init" "$here/mkinitramfs.py" \
  <(echo "busybox=$BUSYBOX_VERSION gcc=$gcc_version") | sha256sum | cut -c1-12)
guest_dir=$lab/guest-$guest_key
if [[ ! -s $guest_dir/initramfs.cpio.gz ]]; then
  log "building the guest initramfs ($guest_dir)"
  rm -rf "$guest_dir" && mkdir -p "$guest_dir/bb" "$guest_dir/root"/{bin,proc,sys,dev,tmp}
  deb=$(fetch "busybox-static=$BUSYBOX_VERSION")
  dpkg-deb -x "$deb" "$guest_dir/bb"
  cp "$guest_dir/bb/bin/busybox" "$guest_dir/root/bin/busybox"
  for applet in sh mount cat sleep echo ls ps; do ln -s busybox "$guest_dir/root/bin/$applet"; done
  gcc -O2 -static -Wall -Werror -o "$guest_dir/root/bin/dirtier" "$guest_src/dirtier.c"
  install -m 0755 "$guest_src/init" "$guest_dir/root/init"
  python3 "$here/mkinitramfs.py" "$guest_dir/root" "$guest_dir/initramfs.cpio.gz.tmp"
  mv "$guest_dir/initramfs.cpio.gz.tmp" "$guest_dir/initramfs.cpio.gz"
  rm -rf "$guest_dir/bb"
fi

# ---- 5. manifest ---------------------------------------------------------------------------------
{
  echo "# Written by hack/lab/setup.sh; read by livemig.lab (LabInstall.load)."
  echo "LAB_QEMU='$qemu_bin'"
  echo "LAB_QEMU_DATADIR='$qemu_dir/share'"
  echo "LAB_LD_LIBRARY_PATH='$qemu_libs'"
  echo "LAB_QEMU_VERSION='$QEMU_VERSION'"
  echo "LAB_KERNEL='$kernel_dir/vmlinuz'"
  echo "LAB_KERNEL_VERSION='$KERNEL_PACKAGE $KERNEL_VERSION'"
  echo "LAB_INITRAMFS='$guest_dir/initramfs.cpio.gz'"
  echo "LAB_BUSYBOX_VERSION='$BUSYBOX_VERSION'"
  echo "LAB_GUEST_KEY='$guest_key'"
} >"$manifest.tmp"
mv "$manifest.tmp" "$manifest"
echo "$manifest"

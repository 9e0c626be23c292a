#!/bin/sh
# Installs the Debian packages bronze needs and enables Debian source packages
# (deb-src), deriving the entry from the machine's own sources; idempotent.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)

# tools used by builds, tests and boots; `bronze doctor` explains each one
packages="build-essential bc bison flex libelf-dev libssl-dev openssl kmod cpio
  linux-source-6.12=$(sed -n 's/^ *debianVersion: *//p' "$root/kernel/source.yaml")
  squashfs-tools zstd xz-utils bubblewrap binutils systemd-boot-efi sbsigntool
  qemu-system-x86 ovmf git linux-config-6.1 linux-config-6.12 docker-registry skopeo umoci apache2-utils
  dosfstools mtools gcc-12-plugin-dev efitools fdisk gdisk chromium xorriso genisoimage qemu-utils ipxe-qemu
  swtpm swtpm-tools libtss2-tcti-swtpm0 libtss2-esys-3.0.2-0 libtss2-rc0
  gperf cmake ninja-build meson pkgconf rsync
  gcc-aarch64-linux-gnu gcc-12-plugin-dev-aarch64-linux-gnu qemu-system-arm qemu-efi-aarch64 qemu-user-static"

missing=""
for spec in $packages; do
  name=${spec%%=*}
  want=${spec#*=}
  have=$(dpkg-query -W -f='${db:Status-Abbrev}${Version}' "$name" 2>/dev/null || true)
  case "$have" in
    ii*) [ "$want" = "$spec" ] || [ "${have#ii }" = "$want" ] || missing="$missing $spec" ;;
    *) missing="$missing $spec" ;;
  esac
done

src_list=/etc/apt/sources.list.d/bronze-deb-src.sources
need_update=""
if ! grep -rqsE '^(Types:.*deb-src|deb-src )' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  deb822=$(grep -lsE '^Types:.*\bdeb\b' /etc/apt/sources.list.d/*.sources | head -n 1 || true)
  if [ -n "$deb822" ]; then
    sed -E 's/^Types:.*/Types: deb-src/' "$deb822" > "$src_list.tmp"
  elif [ -f /etc/apt/sources.list ]; then
    src_list=/etc/apt/sources.list.d/bronze-deb-src.list
    sed -nE 's/^deb (.*)/deb-src \1/p' /etc/apt/sources.list > "$src_list.tmp"
  else
    echo "setup-host: no Debian sources file found to derive a deb-src entry from" >&2
    exit 1
  fi
  mv "$src_list.tmp" "$src_list"
  echo "setup-host: enabled Debian source packages in $src_list"
  need_update=1
fi

if [ -n "$missing" ] || [ -n "$need_update" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
fi
if [ -n "$missing" ]; then
  echo "setup-host: installing:$missing"
  apt-get install -y -q --no-install-recommends $missing
fi

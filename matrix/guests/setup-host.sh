#!/bin/sh
# Install on this (Debian) host what the matrix guests need, and only what is missing:
# qemu for x86_64 and arm64 guests, a static busybox for the initramfs, cpio/kmod/zstd/xz to
# unpack kernel .debs and build the initramfs, the arm64 cross compilers for the arm64 loader,
# and the Debian archive keyring apt.sh verifies against. Idempotent; silent when nothing to do.
#
#   bash matrix/guests/setup-host.sh
set -eu
want="qemu-system-x86 qemu-system-arm busybox-static cpio kmod gcc-aarch64-linux-gnu
g++-aarch64-linux-gnu bc zstd xz-utils gzip python3 debian-archive-keyring apt coreutils cmake pkg-config"
missing=
for p in $want; do
  st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$st" = "install ok installed" ] || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
[ "$(id -u)" = 0 ] || { echo "setup-host.sh: need root to install:$missing" >&2; exit 1; }
echo "setup-host.sh: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
out=$(mktemp)
# shellcheck disable=SC2086
if ! { apt-get -y -qq update && apt-get -y -qq -o Dpkg::Use-Pty=0 install --no-install-recommends $missing; } >"$out" 2>&1; then
  cat "$out" >&2; rm -f "$out"; echo "setup-host.sh: apt-get failed" >&2; exit 1
fi
rm -f "$out"

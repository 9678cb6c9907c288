#!/bin/bash
# x86_64 matrix guests: Debian's bookworm (6.1) or bullseye (5.10) kernel under qemu-system-x86_64
# (TCG: KVM does not boot these kernels here), a busybox initramfs with matrix/guests/init, and the
# host's / shared read-only over virtio-9p, so the guest runs the host's node, iproute2, bpftool and
# this checkout. Called through matrix/guests/boot.sh:
#
#   x86.sh prepare VERSION        fetch the kernel .deb (once), unpack it, build the initramfs
#   x86.sh boot VERSION SCRIPT    prepare if needed, boot, run SCRIPT in the guest, power off
#
# VERSION: 6.1 | 5.10. Cache: ${WASM_BPF_MATRIX_CACHE:-/var/cache/wasm-bpf/matrix}/x86_64-VERSION/
#   deb/          the kernel .deb (downloaded once; REFRESH=1 resolves linux-image-amd64 again)
#   vmlinuz, kernel.version, initramfs.cpio (+ initramfs.key, kmods.txt): rebuilt from the
#                 .deb when it, init, busybox, kmods.py or the module list change
# Boot: stdout gets the guest script's output only (console lines between WBG_BOOTED and WBG_EXIT);
# stderr a one-line summary; the whole console goes to $CACHE/logs/x86_64-VERSION.log. Exit status:
# the script's; 124 on timeout (qemu killed); 125 when the guest did not boot or died in the script.
# Env: MEM (2048) SMP (2) TIMEOUT (1800 s) APPEND (extra kernel args) WBG_ENV (KEY=VALUE lines
# exported in the guest) REFRESH (1: re-resolve the kernel package).
set -euo pipefail
shopt -s lastpipe

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
PROJECT=$(cd "$HERE/../.." && pwd -P)
CACHE=${WASM_BPF_MATRIX_CACHE:-/var/cache/wasm-bpf/matrix}
BUSYBOX=${BUSYBOX:-/bin/busybox}

die() { echo "x86.sh: $*" >&2; exit 2; }
[ $# -ge 2 ] || die "usage: x86.sh prepare|boot VERSION [SCRIPT]"
VERB=$1 VERSION=$2
case $VERSION in
  6.1)  SUITE=bookworm LSM=lockdown,capability,landlock,yama,apparmor,bpf ;;
  5.10) SUITE=bullseye LSM=lockdown,capability,yama,apparmor,bpf ;;
  *) die "unknown version '$VERSION' (6.1 or 5.10)" ;;
esac
PLATFORM=x86_64-$VERSION
W=$CACHE/$PLATFORM
# virtio-9p over PCI for the host root, an entropy source so getrandom() never waits, and what the
# example apps attach to (veth pairs between namespaces, tc clsact + cls_bpf/act_bpf, AF_PACKET).
MODULES="virtio_pci 9pnet_virtio 9p virtio_rng veth sch_ingress cls_bpf act_bpf af_packet"

# ---------------------------------------------------------------- prepare
fetch_deb() {
  mkdir -p "$W/deb"
  local name=
  [ -f "$W/deb/current" ] && name=$(cat "$W/deb/current")
  if [ -n "$name" ] && [ -f "$W/deb/$name" ] && [ "${REFRESH:-0}" != 1 ]; then
    DEB=$W/deb/$name; return
  fi
  echo "x86.sh: $PLATFORM: resolving linux-image-amd64 in $SUITE" >&2
  "$HERE/apt.sh" amd64 "$SUITE" apt-get -qq update >&2
  local pkg
  pkg=$("$HERE/apt.sh" amd64 "$SUITE" apt-cache depends linux-image-amd64 |
        awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')
  [ -n "$pkg" ] || die "$PLATFORM: cannot resolve linux-image-amd64 in $SUITE"
  local tmp; tmp=$(mktemp -d "$W/deb/dl.XXXXXX"); chmod 755 "$tmp"   # apt downloads as _apt
  (cd "$tmp" && "$HERE/apt.sh" amd64 "$SUITE" apt-get -qq -o APT::Sandbox::User=root download "$pkg" >&2)
  name=$(cd "$tmp" && ls ./*.deb | head -1); name=${name#./}
  [ -n "$name" ] || die "$PLATFORM: download of $pkg failed"
  mv "$tmp/$name" "$W/deb/$name"; rmdir "$tmp"
  echo "$name" > "$W/deb/current"
  # keep only the current .deb
  find "$W/deb" -maxdepth 1 -name '*.deb' ! -name "$name" -delete
  DEB=$W/deb/$name
  echo "x86.sh: $PLATFORM: fetched $name" >&2
}

# vmlinuz, kernel.version and initramfs.cpio are derived from the .deb; the unpacked .deb (all of
# Debian's modules, ~300 MB) only lives while they are built.
build_kernel() {
  [ -x "$BUSYBOX" ] && "$BUSYBOX" --list | grep -x insmod >/dev/null ||
    die "need a static busybox at $BUSYBOX (bash matrix/guests/setup-host.sh)"
  local key
  key=$( { basename "$DEB"; echo "$MODULES boot/config"; cat "$HERE/init" "$HERE/kmods.py" "$BUSYBOX"; } |
         sha256sum | cut -c1-16)
  KV=$(cat "$W/kernel.version" 2>/dev/null || true)
  if [ -n "$KV" ] && [ -f "$W/vmlinuz" ] && [ -f "$W/initramfs.cpio" ] &&
     [ "$(cat "$W/initramfs.key" 2>/dev/null)" = "$key" ]; then
    return
  fi
  local k="$W/kernel.tmp" r="$W/initramfs.tmp"
  rm -rf "$k" "$r" "$W/kernel"; mkdir -p "$k" "$r/bb" "$r/kmod"
  dpkg-deb -x "$DEB" "$k"
  KV=$(ls "$k/lib/modules" | head -1)
  [ -n "$KV" ] && [ -f "$k/boot/vmlinuz-$KV" ] || die "$PLATFORM: no kernel in $DEB"
  [ -s "$k/lib/modules/$KV/modules.dep" ] || depmod -b "$k" "$KV"
  cp "$BUSYBOX" "$r/bb/busybox"
  cp "$HERE/init" "$r/init"
  chmod 755 "$r/init" "$r/bb/busybox"
  # /boot/config-$KV as on an installed Debian system (the runtime's probe reads it)
  mkdir -p "$r/boot"; cp "$k/boot/config-$KV" "$r/boot/"
  python3 "$HERE/kmods.py" "$k/lib/modules/$KV" "$r/kmod" $MODULES 2>"$W/kmods.txt" ||
    { cat "$W/kmods.txt" >&2; die "$PLATFORM: module closure failed"; }
  (cd "$r" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) > "$W/initramfs.cpio.new"
  cp "$k/boot/vmlinuz-$KV" "$W/vmlinuz.new"
  mv "$W/vmlinuz.new" "$W/vmlinuz"
  mv "$W/initramfs.cpio.new" "$W/initramfs.cpio"
  echo "$KV" > "$W/kernel.version"
  echo "$key" > "$W/initramfs.key"
  rm -rf "$k" "$r" "$W/kernel.stamp"
  echo "x86.sh: $PLATFORM: kernel $KV, initramfs ($(tail -1 "$W/kmods.txt" | sed 's/^kmods: //'))" >&2
}

prepare() {
  mkdir -p "$W"
  exec 9>"$W/.lock"
  flock 9
  fetch_deb
  build_kernel
  flock -u 9
  exec 9>&-
}

# ---------------------------------------------------------------- boot
squote() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }

guest_env() {
  local node; node=$(command -v "${WASM_BPF_HOST_NODE:-node}" 2>/dev/null || true)
  [ -n "$node" ] && node=/mnt/root$(readlink -f "$node") || node=/usr/bin/node
  echo "export WASM_BPF_ROOT=$(squote "/mnt/root$PROJECT")"
  echo "export WASM_BPF_NODE=$(squote "$node")"
  echo "export WASM_BPF_PLATFORM=$(squote "$PLATFORM")"
  echo "export WASM_BPF_CACHE_DIR=/var/cache/wasm-bpf"
  echo "export HOME=/tmp"
  echo "export PATH=$(squote "$(dirname "$node"):/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/bbin")"
  echo "mkdir -p /var/cache/wasm-bpf"
  local line
  while IFS= read -r line; do
    [ -n "$line" ] || continue
    case ${line%%=*} in
      *[!A-Za-z0-9_]*|[0-9]*|'') die "WBG_ENV: bad line '$line' (want KEY=VALUE)" ;;
    esac
    [ "${line#*=}" != "$line" ] || die "WBG_ENV: bad line '$line' (want KEY=VALUE)"
    echo "export ${line%%=*}=$(squote "${line#*=}")"
  done <<< "${WBG_ENV:-}"
}

boot() {
  local script=$1
  [ -f "$script" ] || die "no such script: $script"
  local t_start=$EPOCHREALTIME
  prepare
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/wbg-$PLATFORM.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  mkdir "$tmp/x"
  cp "$script" "$tmp/x/guest-script"
  guest_env > "$tmp/x/guest-env"
  chmod 644 "$tmp/x/guest-script" "$tmp/x/guest-env"
  # The cached initramfs plus a small second archive with this run's script and environment:
  # the kernel unpacks concatenated cpio archives one after the other.
  { cat "$W/initramfs.cpio"; (cd "$tmp/x" && printf 'guest-script\nguest-env\n' | cpio -o -H newc -R 0:0 --quiet); } > "$tmp/initrd"

  mkdir -p "$CACHE/logs"
  local log=$CACHE/logs/$PLATFORM.log
  local timeout=${TIMEOUT:-1800}
  local append="console=ttyS0 rdinit=/init quiet loglevel=1 lsm=$LSM panic=-1 ${APPEND:-}"
  local t_qemu=$EPOCHREALTIME t_booted= status= qemu_rc= line cut
  local runlog=$log.$$   # this run's console; renamed to $log when qemu is done
  : > "$runlog"
  {
    echo "# $PLATFORM kernel $KV, $(date -u +%FT%TZ), cmdline: $append"
    timeout -k 10 "$timeout" qemu-system-x86_64 -accel tcg -cpu max -smp "${SMP:-2}" -m "${MEM:-2048}" \
      -nodefaults -no-reboot -display none \
      -chardev stdio,id=con,signal=off -serial chardev:con \
      -kernel "$W/vmlinuz" -initrd "$tmp/initrd" -append "$append" \
      -fsdev local,id=fs0,path=/,security_model=none,readonly=on,multidevs=remap \
      -device virtio-9p-pci,fsdev=fs0,mount_tag=hostroot \
      -device virtio-rng-pci </dev/null 2>&1 || qemu_rc=$?
    echo "# qemu exit status ${qemu_rc:-0}"
  } | while IFS= read -r line || [ -n "$line" ]; do
    printf '%s\n' "$line" >> "$runlog"
    line=${line//$'\r'/}
    case $line in
      "# qemu exit status "*) qemu_rc=${line##* }; continue ;;
      qemu-system-*) continue ;;   # qemu's own messages (e.g. killed by timeout): log only
    esac
    if [ -z "$t_booted" ]; then
      case $line in *WBG_BOOTED*) t_booted=$EPOCHREALTIME ;; esac
      continue
    fi
    [ -z "$status" ] || continue
    case $line in
      *WBG_EXIT*)
        cut=${line%%WBG_EXIT*}
        [ -z "$cut" ] || printf '%s\n' "$cut"
        status=${line#*WBG_EXIT }; status=${status%% *}
        case $status in ''|*[!0-9]*) status=255 ;; esac
        ;;
      *) printf '%s\n' "$line" ;;
    esac
  done
  mv "$runlog" "$log"
  local t_end=$EPOCHREALTIME
  local total; total=$(awk -v a="$t_start" -v b="$t_end" 'BEGIN { printf "%.0f", b - a }')
  local booted="did not boot"
  [ -z "$t_booted" ] || booted=$(awk -v a="$t_qemu" -v b="$t_booted" 'BEGIN { printf "booted in %.1f s", b - a }')
  local rc what
  if [ -n "$status" ]; then
    rc=$status what="script exit $status"
  elif [ "${qemu_rc:-}" = 124 ] || [ "${qemu_rc:-}" = 137 ]; then
    rc=124 what="TIMEOUT after $timeout s (qemu killed)"
  elif [ -z "$t_booted" ]; then
    rc=125 what="boot failure (qemu status ${qemu_rc:-?})"
  else
    rc=125 what="no WBG_EXIT: the guest died in the script or was stopped (qemu status ${qemu_rc:-?})"
  fi
  echo "boot.sh: $PLATFORM kernel $KV: $booted, $what, $total s total (log: $log)" >&2
  if [ -z "$status" ]; then
    echo "boot.sh: last console lines:" >&2
    grep -av '^\s*$' "$log" | tr -d '\r' | tail -25 | sed 's/^/  | /' >&2
  fi
  return "$rc"
}

case $VERB in
  prepare) prepare ;;
  boot) [ $# -ge 3 ] || die "usage: x86.sh boot VERSION SCRIPT"; boot "$3" ;;
  *) die "unknown verb '$VERB' (prepare or boot)" ;;
esac

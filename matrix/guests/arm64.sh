#!/bin/bash
# Debian arm64 kernels under qemu-system-aarch64 (-M virt, TCG) running the project for real:
# Debian's nodejs:arm64 (bookworm, 18.x) + the native addon, native twins and uprobe-target
# cross-built for arm64 (matrix/guests/arm64-build.sh) + dist/ and the matrix .wasm files.
#
#   matrix/guests/arm64.sh prepare VERSION          fetch + build what a boot needs (cached)
#   matrix/guests/arm64.sh boot VERSION SCRIPT      boot, run SCRIPT (POSIX sh) as /guest-script
#
# VERSION: 6.1 (bookworm linux-image-arm64) or 5.10 (bullseye linux-image-arm64).
#
# Cache ($WASM_BPF_MATRIX_CACHE, default /var/cache/wasm-bpf/matrix), all under $CACHE/arm64:
#   debs/             the arm64 userland closure (bookworm) + busybox-static + -dev packages
#   userland/         the closure unpacked: the guest's / over virtio-9p (built once)
#   sysroot/          libbpf/libelf/zlib (-dev + runtime) unpacked, for the cross builds
#   build/            cross-build outputs (arm64-build.sh)
#   VERSION/          kernel .deb, kx/ (unpacked), vmlinuz, initrd.cpio.gz (busybox, init, modules)
#   share-VERSION/    hard-link copy of userland/ + opt/wasm-bpf (restaged on every boot)
# Logs: $CACHE/logs/arm64-VERSION.log (full console of the last boot).
#
# boot: stdout carries only the script's output (console lines between WBG_BOOTED and WBG_EXIT);
# stderr one summary line; exit status = the script's, 124 on timeout, 125 if the guest never booted.
# Env: MEM (3072) SMP (2) CPU (max,pauth-impdef=on) TIMEOUT (2400 s) APPEND (extra cmdline)
#      WBG_ENV (newline-separated KEY=VALUE lines exported in the guest).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
P=$(cd "$HERE/../.." && pwd)
CACHE=${WASM_BPF_MATRIX_CACHE:-/var/cache/wasm-bpf/matrix}
A=$CACHE/arm64
APT=$HERE/apt.sh
export WASM_BPF_MATRIX_CACHE=$CACHE

# The userland: bookworm's for every kernel (bullseye's nodejs is 12).
USERLAND_PKGS="base-files nodejs iproute2 iputils-ping libc6 dash coreutils bpftool libbpf1 libelf1 zlib1g"
SYSROOT_PKGS="libbpf-dev libbpf1 libelf-dev libelf1 zlib1g-dev zlib1g"
# Packages the closure drags in that an initramfs userland does not need (maintainer-script tools).
CLOSURE_SKIP='^(cdebconf|debconf|dpkg|install-info|libdebian-installer4|libnewt0.52|libslang2|libtextwrap1|tar|perl-base|debianutils|init-system-helpers)$'
# Kernel modules the guests need (the rest of what matrix apps use is built in on Debian arm64).
KMODS_REQUIRED="9pnet_virtio 9p veth sch_ingress cls_bpf"
KMODS_OPTIONAL="virtio_mmio act_bpf sch_clsact"

log() { echo "arm64.sh: $*" >&2; }
die() { echo "arm64.sh: $*" >&2; exit 2; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

suite_of() {
  case "$1" in
    6.1) echo bookworm;;
    5.10) echo bullseye;;
    *) die "unknown VERSION '$1' (6.1|5.10)";;
  esac
}

# apt index of a suite, refreshed when older than a day (or missing)
apt_index() {
  local suite=$1 lists=$CACHE/apt/arm64-$1/lists
  if [ -z "$(find "$lists" -maxdepth 1 -name '*_Packages*' -mmin -1440 2>/dev/null | head -1)" ]; then
    log "apt-get update (arm64 $suite)"
    "$APT" arm64 "$suite" apt-get update -qq >&2
  fi
}

download() { # suite dir pkg... (apt-get download into dir, quiet)
  local suite=$1 dir=$2; shift 2
  mkdir -p "$dir"
  (cd "$dir" && "$APT" arm64 "$suite" apt-get download -qq "$@" 2>&1 \
     | grep -v 'Download is performed unsandboxed' >&2 || true)
}

deb_of() { # dir pkg -> the one .deb of pkg in dir (newest version if several)
  ls "$1/$2"_*.deb 2>/dev/null | sort -V | tail -1
}

# ---- userland (once) --------------------------------------------------------------------------
userland() {
  [ -f "$A/userland/.done" ] && [ -f "$A/sysroot/.done" ] && [ -f "$A/busybox" ] && return 0
  apt_index bookworm
  local closure d
  closure=$("$APT" arm64 bookworm apt-cache depends --recurse --no-recommends --no-suggests \
      --no-conflicts --no-breaks --no-replaces --no-enhances $USERLAND_PKGS 2>/dev/null \
    | grep -v '^ ' | grep -v '^<' | sort -u | grep -vE "$CLOSURE_SKIP")
  log "downloading the arm64 userland ($(echo $closure | wc -w) packages) + sysroot + busybox"
  # shellcheck disable=SC2086
  download bookworm "$A/debs" $closure $SYSROOT_PKGS busybox-static
  for d in $closure $SYSROOT_PKGS busybox-static; do
    [ -n "$(deb_of "$A/debs" "$d")" ] || die "download of $d failed"
  done
  echo "$closure" > "$A/debs/closure.txt"

  rm -rf "$A/userland.tmp" "$A/sysroot.tmp"
  mkdir -p "$A/userland.tmp" "$A/sysroot.tmp"
  for d in $closure; do dpkg-deb -x "$(deb_of "$A/debs" "$d")" "$A/userland.tmp"; done
  rm -rf "$A/userland.tmp/usr/share/doc" "$A/userland.tmp/usr/share/man" \
    "$A/userland.tmp/usr/share/locale" "$A/userland.tmp/usr/share/info"
  # what dpkg maintainer scripts would have made: /bin/sh, and the dirs the guest mounts over
  ln -sfn dash "$A/userland.tmp/bin/sh"
  mkdir -p "$A/userland.tmp/opt" "$A/userland.tmp/run" "$A/userland.tmp/tmp"
  for d in $SYSROOT_PKGS; do dpkg-deb -x "$(deb_of "$A/debs" "$d")" "$A/sysroot.tmp"; done
  dpkg-deb --fsys-tarfile "$(deb_of "$A/debs" busybox-static)" | tar -xO ./bin/busybox > "$A/busybox.tmp"
  chmod 755 "$A/busybox.tmp"
  rm -rf "$A/userland" "$A/sysroot"
  mv "$A/userland.tmp" "$A/userland"; mv "$A/sysroot.tmp" "$A/sysroot"; mv "$A/busybox.tmp" "$A/busybox"
  touch "$A/userland/.done" "$A/sysroot/.done"
  # a new userland invalidates the per-version share copies
  rm -rf "$A"/share-*
}

# ---- kernel + initramfs (once per VERSION) ----------------------------------------------------
kernel() {
  local v=$1 suite kpkg kv K=$A/$1
  suite=$(suite_of "$v")
  [ -f "$K/.done" ] && return 0
  apt_index "$suite"
  # the newest kernel linux-image-arm64 points to whose .deb the mirror really serves (bullseye-security
  # lists 5.10.0-46-arm64 but 404s on it: fall back to older metapackage versions, and to -unsigned)
  local ver dep kpkg=""
  rm -rf "$K" && mkdir -p "$K"
  for ver in $("$APT" arm64 "$suite" apt-cache madison linux-image-arm64 | awk -F'|' '{ gsub(/ /, "", $2); print $2 }' | sort -Vr -u); do
    dep=$("$APT" arm64 "$suite" apt-cache show "linux-image-arm64=$ver" \
      | sed -n 's/^Depends:.*\(linux-image-[0-9][^ ,]*\).*/\1/p' | head -1)
    for kpkg in "$dep" "$dep-unsigned"; do
      [ -n "$dep" ] || continue
      log "downloading $kpkg ($suite)"
      download "$suite" "$K" "$kpkg"
      [ -n "$(deb_of "$K" "$kpkg")" ] && break 2
    done
    kpkg=""
  done
  [ -n "$kpkg" ] || die "no downloadable linux-image-arm64 kernel in $suite"
  mkdir -p "$K/kx"
  dpkg-deb -x "$(deb_of "$K" "$kpkg")" "$K/kx"
  kv=$(ls "$K/kx/lib/modules" | head -1)
  [ -f "$K/kx/lib/modules/$kv/modules.dep" ] || depmod -b "$K/kx" "$kv"
  cp "$K/kx/boot/vmlinuz-$kv" "$K/vmlinuz"
  echo "$kv" > "$K/kv"
  # initramfs: static busybox, the lead's init, the modules
  local R=$K/initrd-root m
  mkdir -p "$R/bb" "$R/kmod" "$R/boot"
  cp "$K/kx/boot/config-$kv" "$R/boot/"   # /boot/config-KV, what probe reads the kernel config from
  cp "$A/busybox" "$R/bb/busybox"
  cp "$HERE/init" "$R/init"; chmod 755 "$R/init"
  # kmods.py writes the closure of whatever it finds and exits 1 if any name is missing: only a
  # missing required module is an error
  python3 "$HERE/kmods.py" "$K/kx/lib/modules/$kv" "$R/kmod" $KMODS_REQUIRED $KMODS_OPTIONAL \
    2> "$K/kmods.log" || true
  for m in $KMODS_REQUIRED; do
    if grep -q "kmods: $m: MISSING" "$K/kmods.log"; then cat "$K/kmods.log" >&2; die "kernel module $m missing"; fi
  done
  (cd "$R" && find . | cpio -o -H newc --quiet) | gzip -1 > "$K/initrd.cpio.gz"
  rm -rf "$K/kx"   # ~400 MB unpacked; the .deb stays for a rebuild
  touch "$K/.done"
  log "kernel $kv ready: $(tr '\n' ' ' < "$R/kmod/order")"
}

# init changed since the initramfs was made -> rebuild just the cpio
initrd_fresh() {
  local K=$A/$1
  if ! cmp -s "$HERE/init" "$K/initrd-root/init"; then
    cp "$HERE/init" "$K/initrd-root/init"
    (cd "$K/initrd-root" && find . | cpio -o -H newc --quiet) | gzip -1 > "$K/initrd.cpio.gz"
  fi
}

# ---- the share: userland + project ------------------------------------------------------------
stage() {
  local v=$1 S=$A/share-$1 O
  if [ ! -f "$S/.done" ]; then
    rm -rf "$S" && cp -al "$A/userland" "$S" && rm -f "$S/.done"
    touch "$S/.done"
  fi
  O=$S/opt/wasm-bpf
  rm -rf "$O.new" && mkdir -p "$O.new/native/build/Release" "$O.new/matrix/build/native"
  cp -a "$P/package.json" "$P/bin" "$P/dist" "$O.new/"
  cp "$A/build/wasm_bpf_native.node" "$O.new/native/build/Release/"
  cp "$P"/matrix/build/*.wasm "$O.new/matrix/build/"
  cp -a "$A/build/matrix/native/." "$O.new/matrix/build/native/"
  rm -f "$O.new"/matrix/build/native/*.skel.h
  cp "$A/build/matrix/uprobe-target" "$O.new/matrix/build/"
  # the uprobe agent (the userspace backend), its join build, injector and ptrace tracer, and its C tests, where npm's build puts them
  mkdir -p "$O.new/native/agent/build/test"
  cp "$A/build/agent/libwbpf_agent.so" "$A/build/agent/libwbpf_agent_join.so" "$A/build/agent/wbpf-inject" "$A/build/agent/wbpf-ptrace" "$O.new/native/agent/build/"
  cp "$A"/build/agent/test/* "$O.new/native/agent/build/test/" 2>/dev/null || true
  rm -rf "$O" && mv "$O.new" "$O"
}

build() { # quiet inside boot (stderr carries one summary line there); the log says what happened
  if [ -n "${PREPARE_QUIET:-}" ]; then
    "$HERE/arm64-build.sh" > "$A/build.log" 2>&1 || { cat "$A/build.log" >&2; die "cross build failed"; }
  else
    "$HERE/arm64-build.sh" >&2
  fi
}

prepare() {
  local v=$1 t0; t0=$(now)
  suite_of "$v" > /dev/null
  mkdir -p "$A" "$CACHE/logs"
  exec 9> "$A/.lock"; flock 9       # one prepare at a time (shared downloads)
  userland
  kernel "$v"
  initrd_fresh "$v"
  build
  exec 9>&-
  [ -n "${PREPARE_QUIET:-}" ] || log "prepare $v done in $(secs "$t0" "$(now)") s (kernel $(cat "$A/$v/kv"))"
}

# ---- boot -------------------------------------------------------------------------------------
sq() { printf "'%s'" "$(printf %s "$1" | sed "s/'/'\\\\''/g")"; }

boot() {
  local v=$1 script=$2 t0 K=$A/$1 plat=arm64-$1 logf rc=0 tb
  [ -f "$script" ] || die "no script $script"
  command -v qemu-system-aarch64 > /dev/null || die "qemu-system-aarch64 missing (apt-get install qemu-system-arm)"
  t0=$(now)
  PREPARE_QUIET=1 prepare "$v"
  exec 8> "$A/.boot-$v.lock"; flock 8   # the share of a version is restaged per boot
  stage "$v"
  logf=$CACHE/logs/$plat.log
  W=$(mktemp -d "$A/.boot-$v.XXXXXX")   # global: the EXIT trap needs it
  trap 'rm -rf "$W"' EXIT
  mkdir "$W/x"
  cp "$script" "$W/x/guest-script"
  {
    echo "export WASM_BPF_ROOT=/mnt/root/opt/wasm-bpf"
    echo "export WASM_BPF_NODE=/usr/bin/node"
    echo "export WASM_BPF_PLATFORM=$plat"
    echo "export WASM_BPF_CACHE_DIR=/var/cache/wasm-bpf"
    echo "export HOME=/tmp"
    local line
    while IFS= read -r line; do
      case "$line" in *=*) ;; *) continue;; esac
      echo "export ${line%%=*}=$(sq "${line#*=}")"
    done <<< "${WBG_ENV:-}"
  } > "$W/x/guest-env"
  chmod 755 "$W/x/guest-script"
  (cd "$W/x" && printf 'guest-script\nguest-env\n' | cpio -o -H newc --quiet) | gzip -1 > "$W/extra.cpio.gz"
  cat "$K/initrd.cpio.gz" "$W/extra.cpio.gz" > "$W/initrd.cpio.gz"

  tb=$(now)
  # the console goes to the log as it comes, and the script's part of it (between WBG_BOOTED and
  # WBG_EXIT; WBG_EXIT may follow output that did not end in a newline) to stdout line by line, so
  # the caller sees each result as the guest prints it
  timeout -k 10 "${TIMEOUT:-2400}" qemu-system-aarch64 -M virt -cpu "${CPU:-max,pauth-impdef=on}" \
    -smp "${SMP:-2}" -m "${MEM:-3072}" -display none -monitor none -serial stdio -no-reboot \
    -kernel "$K/vmlinuz" -initrd "$W/initrd.cpio.gz" \
    -append "console=ttyAMA0 rdinit=/init quiet loglevel=1 panic=-1${APPEND:+ $APPEND}" \
    -fsdev local,id=fs0,path="$A/share-$v",security_model=none,readonly=on \
    -device virtio-9p-device,fsdev=fs0,mount_tag=hostroot \
    < /dev/null 2> "$W/qemu.err" | tee "$logf" | awk -v sf="$W/status" '
    { sub(/\r$/, "") }
    done { next }
    on && match($0, /WBG_EXIT [0-9]+ uptime=/) {
      if (RSTART > 1) print substr($0, 1, RSTART - 1)
      split(substr($0, RSTART), f, " "); print f[2] > sf; close(sf); fflush(); done = 1; next
    }
    on { print; fflush(); next }
    /^WBG_BOOTED / { on = 1 }' || rc=$?
  # qemu's own messages after the console (they must not land in the script's output)
  [ -s "$W/qemu.err" ] && { echo "--- qemu stderr (exit status $rc)"; cat "$W/qemu.err"; } >> "$logf"

  local booted status bootsecs total
  total=$(secs "$t0" "$(now)")
  booted=$(tr -d '\r' < "$logf" | grep -a -m1 '^WBG_BOOTED' || true)
  if [ -z "$booted" ]; then
    echo "arm64.sh: $plat: guest never booted (qemu status $rc; log $logf); log tail:" >&2
    tr -d '\r' < "$logf" | tail -30 >&2
    [ "$rc" = 124 ] && return 124
    return 125
  fi
  status=$(cat "$W/status" 2>/dev/null || true)
  bootsecs=$(echo "$booted" | sed -n 's/.*uptime=\([0-9.]*\).*/\1/p')
  if [ -z "$status" ]; then
    if [ "$rc" = 124 ]; then
      echo "$plat kernel=$(cat "$K/kv") boot=${bootsecs}s status=timeout(${TIMEOUT:-2400}s) total=${total}s log=$logf; log tail:" >&2
      tr -d '\r' < "$logf" | grep -av '^\s*$' | tail -20 >&2
      return 124
    fi
    echo "$plat kernel=$(cat "$K/kv") boot=${bootsecs}s status=died(qemu $rc, no WBG_EXIT) total=${total}s log=$logf; log tail:" >&2
    tr -d '\r' < "$logf" | tail -20 >&2
    return 125
  fi
  echo "$plat kernel=$(cat "$K/kv") boot=${bootsecs}s status=$status total=${total}s log=$logf" >&2
  return "$status"
}

case "${1:-}" in
  prepare) [ $# -eq 2 ] || die "usage: $0 prepare VERSION"; prepare "$2";;
  boot) [ $# -eq 3 ] || die "usage: $0 boot VERSION SCRIPT"; boot "$2" "$3";;
  *) die "usage: $0 prepare VERSION | boot VERSION SCRIPT";;
esac

#!/bin/sh
# Run a shell script inside a qemu guest with another kernel or architecture (the compatibility
# matrix). The guest sees the host's root (x86_64) or a Debian arm64 userland (arm64) read-only on
# /mnt/root, this checkout at $WASM_BPF_ROOT and node at $WASM_BPF_NODE.
#
#   matrix/guests/boot.sh PLATFORM SCRIPT      boot, run SCRIPT (POSIX sh) in the guest, power off
#   matrix/guests/boot.sh --prepare PLATFORM   only fetch and build what the guest needs
#
# PLATFORM: x86_64-6.1 x86_64-5.10 arm64-6.1 arm64-5.10.
# stdout: the script's output only; stderr: one summary line (and the console's tail on failure).
# Exit status: the script's; 124 guest timed out; 125 guest did not boot (or died in the script).
# Env: WASM_BPF_MATRIX_CACHE (/var/cache/wasm-bpf/matrix) MEM (2048) SMP (2) TIMEOUT (1800)
#      APPEND (extra kernel args) WBG_ENV (newline-separated KEY=VALUE exported in the guest).
# Host packages: bash matrix/guests/setup-host.sh
set -eu
HERE=$(cd "$(dirname "$0")" && pwd -P)
usage() { echo "usage: $0 PLATFORM SCRIPT | $0 --prepare PLATFORM" >&2; exit 2; }
if [ "${1:-}" = --prepare ]; then
  [ $# -eq 2 ] || usage
  verb=prepare platform=$2
  set --
else
  [ $# -eq 2 ] || usage
  verb=boot platform=$1 script=$2
  [ -f "$script" ] || { echo "boot.sh: no such script: $script" >&2; exit 2; }
  set -- "$(cd "$(dirname "$script")" && pwd)/$(basename "$script")"
fi
case $platform in
  x86_64-6.1|x86_64-5.10) exec bash "$HERE/x86.sh" "$verb" "${platform#x86_64-}" "$@" ;;
  arm64-6.1|arm64-5.10) exec bash "$HERE/arm64.sh" "$verb" "${platform#arm64-}" "$@" ;;
  *) echo "boot.sh: unknown platform '$platform' (x86_64-6.1 x86_64-5.10 arm64-6.1 arm64-5.10)" >&2
     exit 2 ;;
esac

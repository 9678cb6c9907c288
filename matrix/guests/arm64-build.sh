#!/bin/bash
# Cross builds for the arm64 guests (called by arm64.sh prepare; incremental, cheap when warm):
#   $CACHE/arm64/build/wasm_bpf_native.node      the native addon (native/CMakeLists.txt, cmake with an
#                                                aarch64-linux-gnu toolchain; libbpf/libelf/zlib from
#                                                the arm64 sysroot, linked dynamically: the guest
#                                                userland has libbpf1; N-API headers from the host node)
#   $CACHE/arm64/build/matrix/native/<app>       every matrix app's native twin, BPF objects built with
#                                                BPF_ARCH=arm64 (+ compat/ptregs' user_pt_regs against
#                                                the host's x86 vmlinux.h), libbpf/libelf/zlib static
#   $CACHE/arm64/build/matrix/uprobe-target
#   $CACHE/arm64/build/agent/                    the uprobe agent (native/agent, ARCH=arm64): libwbpf_agent.so,
#                                                its join build and injector (libwbpf_agent_join.so, wbpf-inject),
#                                                its C tests (test/hook_test_arm64, maps, helpers), uprobe-target-join and -static, join-target
# Needs the sysroot arm64.sh prepare unpacks ($CACHE/arm64/sysroot) and, for the matrix .wasm
# files the guests run, a host `make -C matrix` (run here if build/bootstrap.wasm is missing).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
P=$(cd "$HERE/../.." && pwd)
CACHE=${WASM_BPF_MATRIX_CACHE:-/var/cache/wasm-bpf/matrix}
A=$CACHE/arm64
S=$A/sysroot
O=$A/build
TRIPLE=aarch64-linux-gnu
JOBS=${JOBS:-2}
[ -f "$S/.done" ] || { echo "arm64-build.sh: no sysroot at $S (run arm64.sh prepare)" >&2; exit 2; }
for t in $TRIPLE-gcc $TRIPLE-g++ cmake pkg-config; do
  command -v "$t" > /dev/null || { echo "arm64-build.sh: $t missing (apt-get install gcc-$TRIPLE g++-$TRIPLE cmake pkg-config)" >&2; exit 2; }
done
mkdir -p "$O"
# the build dirs are one checkout's: cmake keeps the source dir it was configured with and make trusts the
# objects' times, so a build left by another checkout (a CI clone, a worktree) would be reused unchanged
# (the guest then ran an addon of another tree: a shared-map layout mismatch, EINVAL at MAP)
if [ "$(cat "$O/.source" 2>/dev/null)" != "$P" ]; then
  rm -rf "$O/addon" "$O/agent" "$O/matrix" "$O/wasm_bpf_native.node" "$O/toolchain.cmake"
  echo "$P" > "$O/.source"
fi
is_arm64() { readelf -h "$1" 2>/dev/null | grep -q 'Machine:.*AArch64'; }

# ---- host prerequisites: dist/ and the matrix .wasm files ---------------------------------------
[ -f "$P/dist/bin/wasm-bpf.js" ] || [ -f "$P/dist/src/cli.js" ] || [ -d "$P/dist/src" ] \
  || (cd "$P" && npx tsc -p tsconfig.json)
if [ ! -f "$P/matrix/build/bootstrap.wasm" ] || [ ! -f "$P/matrix/build/uprobe-arm64.wasm" ]; then
  make -C "$P/matrix" -j"$JOBS" wasm uprobe-arm64 >&2
fi

# ---- the addon ----------------------------------------------------------------------------------
NODE_INC=$(node -p "require('path').resolve(process.execPath, '../../include/node')")
[ -f "$NODE_INC/node_api.h" ] || { echo "arm64-build.sh: no node_api.h in $NODE_INC" >&2; exit 2; }
cat > "$O/toolchain.cmake.new" <<EOF
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER $TRIPLE-gcc)
set(CMAKE_CXX_COMPILER $TRIPLE-g++)
EOF
cmp -s "$O/toolchain.cmake.new" "$O/toolchain.cmake" && rm "$O/toolchain.cmake.new" \
  || { mv "$O/toolchain.cmake.new" "$O/toolchain.cmake"; rm -rf "$O/addon"; }
export PKG_CONFIG_LIBDIR=$S/usr/lib/$TRIPLE/pkgconfig:$S/usr/share/pkgconfig
export PKG_CONFIG_SYSROOT_DIR=$S
export PKG_CONFIG_PATH=
LIBDIRS="$S/usr/lib/$TRIPLE:$S/lib/$TRIPLE"
if [ ! -f "$O/addon/CMakeCache.txt" ]; then
  cmake -S "$P/native" -B "$O/addon" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_TOOLCHAIN_FILE="$O/toolchain.cmake" -DCMAKE_JS_INC="$NODE_INC" \
    -DCMAKE_SHARED_LINKER_FLAGS="-Wl,-rpath-link,$LIBDIRS" > "$O/addon-configure.log" 2>&1 \
    || { cat "$O/addon-configure.log" >&2; exit 1; }
fi
cmake --build "$O/addon" -j "$JOBS" > "$O/addon-build.log" 2>&1 || { cat "$O/addon-build.log" >&2; exit 1; }
node_out=$(find "$O/addon" -name wasm_bpf_native.node -newer "$O/addon/CMakeCache.txt" | head -1)
[ -n "$node_out" ] || node_out=$(find "$O/addon" -name wasm_bpf_native.node | head -1)
is_arm64 "$node_out" || { echo "arm64-build.sh: $node_out is not an arm64 object" >&2; exit 1; }
cmp -s "$node_out" "$O/wasm_bpf_native.node" || cp "$node_out" "$O/wasm_bpf_native.node"

# ---- the matrix native twins + uprobe-target ----------------------------------------------------
mkdir -p "$O/matrix"
[ -f "$P/matrix/build/vmlinux.h" ] && { cmp -s "$P/matrix/build/vmlinux.h" "$O/matrix/vmlinux.h" \
  || cp "$P/matrix/build/vmlinux.h" "$O/matrix/vmlinux.h"; }
make -C "$P/matrix" -j"$JOBS" native B="$O/matrix" BPF_ARCH=arm64 \
  BPF_EXTRA_CFLAGS="-include $P/compat/ptregs/include/arm64-user-pt-regs.h" \
  NATIVE_CC="$TRIPLE-gcc -isystem $S/usr/include" \
  NATIVE_LIBS="-L$S/usr/lib/$TRIPLE -Wl,-Bstatic -lbpf -lelf -lz -Wl,-Bdynamic" \
  > "$O/matrix-build.log" 2>&1 || { tail -40 "$O/matrix-build.log" >&2; exit 1; }
# ---- the uprobe agent and its C tests ----------------------------------------------------------
make -C "$P/native/agent" -j"$JOBS" ARCH=arm64 CC=$TRIPLE-gcc CXX=$TRIPLE-g++ B="$O/agent" all tests \
  > "$O/agent-build.log" 2>&1 || { tail -40 "$O/agent-build.log" >&2; exit 1; }
# the target test/agent-hook-arm64.test.ts joins by pid (test/fixtures/agent/uprobe-target.c, as userspace-launch.test.ts builds it)
src=$P/test/fixtures/agent/uprobe-target.c
[ "$O/agent/test/uprobe-target-join" -nt "$src" ] || $TRIPLE-gcc -O2 -g "$src" -o "$O/agent/test/uprobe-target-join" -lpthread
# join-target (test/fixtures/agent/join-target.c): checks its own errno and registers around a join
jt=$P/test/fixtures/agent/join-target.c
[ "$O/agent/test/join-target" -nt "$jt" ] || $TRIPLE-gcc -O2 -g "$jt" -o "$O/agent/test/join-target" -lpthread
# and uprobe-target's static build, which the ptrace tier (build/wbpf-ptrace) takes
[ "$O/agent/test/uprobe-target-static" -nt "$src" ] || $TRIPLE-gcc -O2 -g -static "$src" -o "$O/agent/test/uprobe-target-static" -lpthread
for f in libwbpf_agent.so libwbpf_agent_join.so wbpf-inject wbpf-ptrace test/uprobe-target-join test/uprobe-target-static test/join-target; do
  is_arm64 "$O/agent/$f" || { echo "arm64-build.sh: $O/agent/$f is not an arm64 object" >&2; exit 1; }
done

for f in "$O"/matrix/native/* "$O/matrix/uprobe-target"; do
  case "$f" in *.h) continue;; esac
  is_arm64 "$f" || { echo "arm64-build.sh: $f is not an arm64 executable" >&2; exit 1; }
done
echo "arm64-build.sh: addon + $(ls "$O"/matrix/native | grep -vc '\.h$') native twins + uprobe-target + the agent (arm64) up to date in $O"

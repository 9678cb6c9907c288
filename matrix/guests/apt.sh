#!/bin/sh
# apt-get / apt-cache against a private package index for one Debian suite and architecture, kept
# under the matrix cache, so fetching a guest's kernel or arm64 userland never touches this
# machine's own apt state or dpkg architecture list.
#
#   matrix/guests/apt.sh ARCH SUITE apt-get update
#   matrix/guests/apt.sh arm64 bookworm apt-get download nodejs
#   matrix/guests/apt.sh amd64 bullseye apt-cache depends linux-image-amd64
#
# Env: WASM_BPF_MATRIX_CACHE (default /var/cache/wasm-bpf/matrix); the index lives in
# $WASM_BPF_MATRIX_CACHE/apt/ARCH-SUITE and downloads land in the current directory.
set -eu
[ $# -ge 3 ] || { echo "usage: $0 ARCH SUITE apt-get|apt-cache ARGS..." >&2; exit 2; }
ARCH=$1 SUITE=$2; shift 2
R=${WASM_BPF_MATRIX_CACHE:-/var/cache/wasm-bpf/matrix}/apt/$ARCH-$SUITE
if [ ! -f "$R/sources.d/debian.sources" ]; then
  mkdir -p "$R/lists/partial" "$R/archives/partial" "$R/sources.d"
  touch "$R/status"
  sec=$SUITE-security
  [ "$SUITE" = bullseye ] && sec=bullseye-security
  cat > "$R/sources.d/debian.sources" <<SRC
Types: deb
URIs: http://deb.debian.org/debian
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: $sec
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi
tool=$1; shift
exec "$tool" -o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts="$R/sources.d" \
  -o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null \
  -o Dir::State::Lists="$R/lists" -o Dir::State::status="$R/status" -o Dir::Cache="$R" \
  -o Dir::Cache::archives="$R/archives" \
  -o APT::Architecture="$ARCH" -o APT::Architectures::="$ARCH" -o Debug::NoLocking=1 "$@"

#!/usr/bin/env bash
# smoke.sh: run each matrix app on this machine, cause the events it reports, check its lines.
#
#   ./smoke.sh native [APP...]    the libbpf builds (build/native/<app>)
#   ./smoke.sh wasm [APP...]      the Wasm builds under wasm-bpf (build/<app>.wasm)
#
# Needs root, a built matrix (make -C matrix), tracefs and a cgroup2 mount (CGROUP=..., default
# /sys/fs/cgroup/unified). Traffic stays on loopback and on a veth pair between two network
# namespaces the script creates and deletes. An app whose kernel feature this host lacks (kprobe
# without CONFIG_KPROBES, BPF LSM returning EPERM) counts as SKIP when it fails with the expected
# error (the app's own line natively; wasm-bpf's explanation, e.g. "(EPERM)", under Wasm). Prints one `PASS|FAIL|SKIP app: ...` line per app, then `N passed, N failed, N skipped`.
set -u
cd "$(dirname "$0")"

MODE=${1:-native}
shift || true
APPS=${*:-bootstrap execve opensnoop runqlat sockfilter sockops uprobe xdp lsm kprobe}
CGROUP=${CGROUP:-/sys/fs/cgroup/unified}
WASM_BPF=${WASM_BPF:-node $(pwd)/../bin/wasm-bpf.js}
WASM_DIR=${WASM_DIR:-build}
TMP=$(mktemp -d /tmp/matrix-smoke.XXXXXX)
NS_A=mxsmokeA NS_B=mxsmokeB
passed=0 failed=0 skipped=0

cleanup() {
	ip netns del $NS_A 2>/dev/null
	ip netns del $NS_B 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT

mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing

# cmd APP ARGS...: the command line that runs APP in the chosen mode
cmd() {
	local app=$1
	shift
	if [ "$MODE" = wasm ]; then
		echo "$WASM_BPF run $WASM_DIR/$app.wasm $*"
	else
		echo "build/native/$app $*"
	fi
}

# start APP [NETNS] ARGS...: run the app in the background (output in $TMP/APP.out/.err) and wait
# up to 15 s for its "# " line. Returns 1 if it exited instead.
start() {
	local app=$1 ns=$2
	shift 2
	local c
	c=$(cmd "$app" "$@")
	[ -n "$ns" ] && c="ip netns exec $ns $c"
	$c >"$TMP/$app.out" 2>"$TMP/$app.err" &
	PID=$!
	for _ in $(seq 150); do
		grep -q '^# ' "$TMP/$app.out" && return 0
		kill -0 $PID 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# finish: wait for the app (all apps run with -t) and keep its exit code in RC
finish() {
	wait $PID
	RC=$?
}

# expect APP REGEX...: every REGEX (extended) must match a line of the app's stdout
result() {
	local app=$1
	shift
	local missing=()
	for re in "$@"; do
		grep -Eq "$re" "$TMP/$app.out" || missing+=("$re")
	done
	if [ "$RC" -eq 0 ] && [ ${#missing[@]} -eq 0 ]; then
		echo "PASS $app: $(grep -vc '^#' "$TMP/$app.out") lines"
		passed=$((passed + 1))
	else
		echo "FAIL $app: rc=$RC, missing: ${missing[*]:-none}"
		sed 's/^/    stderr: /' "$TMP/$app.err" | tail -5
		failed=$((failed + 1))
	fi
}

# expect_unsupported APP ERR_REGEX: the app could not run; SKIP when stderr has the expected error
expect_unsupported() {
	local app=$1 re=$2
	if [ "$RC" -ne 0 ] && grep -Eq "$re" "$TMP/$app.err"; then
		echo "SKIP $app: $(grep -E "$re" "$TMP/$app.err" | head -1)"
		skipped=$((skipped + 1))
	else
		result "$app" "$3"
	fi
}

run_bootstrap() {
	start bootstrap "" -t 2 || { finish; result bootstrap; return; }
	/bin/true
	sh -c 'exit 3'
	finish
	result bootstrap '^EXEC pid=[0-9]+ ppid=[0-9]+ comm=[^ ]+ filename=/bin/true$' \
		'^EXIT pid=[0-9]+ ppid=[0-9]+ comm=true exit_code=0 duration_ms=[0-9]+$' \
		'^EXIT pid=[0-9]+ ppid=[0-9]+ comm=sh exit_code=3 duration_ms=[0-9]+$'
}

run_execve() {
	start execve "" -t 2 || { finish; result execve; return; }
	/bin/true "smoke arg"
	finish
	result execve '^EXECVE pid=[0-9]+ uid=0 comm=[^ ]+ filename=/bin/true arg1=smoke_arg$'
}

run_opensnoop() {
	start opensnoop "" -t 2 || { finish; result opensnoop; return; }
	cat /etc/hostname >/dev/null
	cat /nonexistent/smoke 2>/dev/null
	finish
	result opensnoop '^OPEN pid=[0-9]+ comm=cat ret=[0-9]+ flags=0x[0-9a-f]+ filename=/etc/hostname$' \
		'^OPEN pid=[0-9]+ comm=cat ret=-2 flags=0x[0-9a-f]+ filename=/nonexistent/smoke$'
}

run_runqlat() {
	start runqlat "" -t 3 0.5 2 || { finish; result runqlat; return; }
	finish
	result runqlat '^HIST key=0 total=[1-9][0-9]* slots=([0-9]+,){25}[0-9]+$'
}

run_sockfilter() {
	start sockfilter "" -t 2 lo || { finish; result sockfilter; return; }
	echo -n smoke >/dev/udp/127.0.0.1/9
	finish
	result sockfilter '^PKT proto=UDP src=127\.0\.0\.1:[0-9]+ dst=127\.0\.0\.1:9 len=[0-9]+$' \
		'^PKT proto=ICMP src=127\.0\.0\.1:0 dst=127\.0\.0\.1:0 len=[0-9]+$'
}

run_sockops() {
	start sockops "" -t 2 "$CGROUP" || { finish; result sockops; return; }
	local port
	port=$(python3 -c '
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
c = socket.create_connection(s.getsockname()); a, _ = s.accept()
print(s.getsockname()[1]); c.close(); a.close()')
	finish
	result sockops "^TCP op=active local=127\.0\.0\.1:[0-9]+ remote=127\.0\.0\.1:$port$" \
		"^TCP op=passive local=127\.0\.0\.1:$port remote=127\.0\.0\.1:[0-9]+$"
}

run_uprobe() {
	start uprobe "" -t 2 "$(pwd)/build/uprobe-target" || { finish; result uprobe; return; }
	build/uprobe-target 3 4 2 0 >/dev/null
	finish
	local n
	n=$(grep -c '^UPROBE pid=[0-9]* a=3 b=4$' "$TMP/uprobe.out")
	[ "$n" = 2 ] || echo "uprobe: $n UPROBE lines, expected 2" >>"$TMP/uprobe.err"
	[ "$n" = 2 ] || RC=99
	result uprobe '^UPROBE pid=[0-9]+ a=3 b=4$' '^URETPROBE pid=[0-9]+ ret=7$'
}

run_xdp() {
	ip netns add $NS_A && ip netns add $NS_B &&
		ip link add mxsa netns $NS_A type veth peer name mxsb netns $NS_B &&
		ip -n $NS_A addr add 10.213.0.1/24 dev mxsa && ip -n $NS_B addr add 10.213.0.2/24 dev mxsb &&
		ip -n $NS_A link set mxsa up && ip -n $NS_B link set mxsb up || {
		RC=98
		result xdp
		return
	}
	start xdp $NS_B -i 200 -t 2 mxsb || { finish; result xdp; return; }
	ip netns exec $NS_A bash -c 'for i in 1 2 3; do echo -n smoke >/dev/udp/10.213.0.2/9; done'
	finish
	result xdp '^XDP proto=UDP packets=3 bytes=[0-9]+$'
}

run_lsm() {
	start lsm "" -t 2 && /bin/true
	finish
	expect_unsupported lsm '^lsm: .*: Operation not permitted$|\(EPERM\)' '^LSM pid=[0-9]+ comm=[^ ]+ filename=/bin/true$'
}

run_kprobe() {
	start kprobe "" -t 2 && { touch "$TMP/unlink-me" && rm "$TMP/unlink-me"; }
	finish
	expect_unsupported kprobe '^kprobe: .*: No such file or directory$|\(ENOENT\)' '^UNLINK pid=[0-9]+ filename=[^ ]*unlink-me$'
}

for app in $APPS; do
	"run_$app"
done
echo "$passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ]

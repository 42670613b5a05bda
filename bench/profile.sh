#!/bin/bash
# Where the daemon's time goes, per phase: event intake + send (fw1),
# receive (fw2), -c ct commit (fw2), -i dump (fw1). Uses perf's cpu-clock
# sampling (hardware counters are not available in this VM), else prints
# how to use callgrind instead.
#
#   bench/profile.sh [-n N] [--ours PATH]     (default: Debian's 1.4.7)
set -u
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
# shellcheck source=lib.sh
. "$BENCH_DIR/lib.sh"

N=200000
BIN=/usr/sbin/conntrackd IMPL=theirs
HASHSIZE=32768 HASHLIMIT=524288 CT_MAX=262144
NL_BUF=2097152 NL_BUFMAX=8388608 SYNC_SOCKBUF=24985600
SCHED=${BENCH_SCHED-chrt -r 99}
TOOL_SCHED=${BENCH_TOOL_SCHED-chrt -r 98}
CUR_N=$N
while [ $# -gt 0 ]; do
	case $1 in
	-n) N=$2; shift ;;
	--ours) BIN=$2; IMPL=ours; shift ;;
	*) echo "profile.sh: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done
[ "$(id -u)" = 0 ] || fail "must run as root"
command -v perf >/dev/null || fail "perf not installed"
perf record -e cpu-clock -o /dev/null true >/dev/null 2>&1 \
	|| fail "perf cannot sample cpu-clock here; use valgrind --tool=callgrind"
WORK=$(mktemp -d /tmp/ctprof.XXXXXX) || fail mktemp
trap bench_cleanup EXIT
build_inject
ns_setup
gen_conf fw1 192.168.77.1 192.168.77.2
gen_conf fw2 192.168.77.2 192.168.77.1
daemons_restart || fail "$IMPL daemons did not start"

# prof NAME PID CMD...: sample PID while CMD runs, print the top symbols.
prof() {
	local name=$1 pid=$2 rec
	shift 2
	perf record -q -e cpu-clock -F 4999 -g -p "$pid" -o "$WORK/$name.data" \
		>/dev/null 2>&1 &
	rec=$!
	sleep 0.3	# perf attaches asynchronously; no readiness signal exists
	"$@" >/dev/null 2>&1
	kill -INT "$rec"
	wait "$rec"
	echo "---- $IMPL $name (N=$N): by object"
	perf report -q -i "$WORK/$name.data" --no-children --sort dso -g none \
		2>/dev/null | head -8
	echo "---- $IMPL $name: top symbols"
	perf report -q -i "$WORK/$name.data" --no-children --sort dso,sym \
		-g none 2>/dev/null | grep -v '^$' | head -25
	echo "---- $IMPL $name: inclusive (children), syscall/kernel paths"
	perf report -q -i "$WORK/$name.data" --children --sort sym -g none \
		2>/dev/null | grep -E 'sys_|ctnetlink_|netlink_|nf_conntrack_|page_fault|clear_page|udp' \
		| head -15
	echo
}

burst() {
	inj "$NS1" create -n "$N"
	wait_cache fw2 external "$N" 60
}
# Sender and receiver are sampled during the same burst.
perf record -q -e cpu-clock -F 4999 -g -p "$PID_fw2" -o "$WORK/recv.data" \
	>/dev/null 2>&1 &
REC2=$!
prof events-send "$PID_fw1" burst
kill -INT "$REC2"; wait "$REC2"
echo "---- $IMPL events-recv (N=$N): by object"
perf report -q -i "$WORK/recv.data" --no-children --sort dso -g none 2>/dev/null | head -8
echo "---- $IMPL events-recv: top symbols"
perf report -q -i "$WORK/recv.data" --no-children --sort dso,sym -g none \
	2>/dev/null | grep -v '^$' | head -25
echo
prof commit "$PID_fw2" ctl fw2 -c ct
prof dump-i "$PID_fw1" ctl fw1 -i ct

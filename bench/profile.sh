#!/bin/bash
# Where the daemon's time goes, per phase: paced replication (fw1 sending,
# fw2 receiving, at the bench's paced rate: what "CPU per replicated entry"
# measures), burst intake + send (fw1) and receive (fw2), -c ct commit
# (fw2), -i dump (fw1). Uses perf's cpu-clock
# sampling (hardware counters are not available in this VM), else prints
# how to use callgrind instead.
#
#   bench/profile.sh [-n N] [-r RATE] [--ours PATH]   (default: Debian's 1.4.7)
set -u
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
# shellcheck source=lib.sh
. "$BENCH_DIR/lib.sh"

N=200000
RATE=50000                      # entries/s of the paced phase (run.sh's PACED_RATE)
BIN=/usr/sbin/conntrackd IMPL=theirs
HASHSIZE=32768 HASHLIMIT=524288 CT_MAX=262144
NL_BUF=2097152 NL_BUFMAX=8388608 SYNC_SOCKBUF=24985600
SCHED=${BENCH_SCHED-chrt -r 99}
TOOL_SCHED=${BENCH_TOOL_SCHED-chrt -r 98}
CUR_N=$N
while [ $# -gt 0 ]; do
	case $1 in
	-n) N=$2; shift ;;
	-r) RATE=$2; shift ;;
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

# prof NAME PIDS CMD: sample the daemon(s) PIDS (comma-separated) while
# CMD (a shell command line using lib.sh's functions) runs. perf starts CMD
# only once it is attached, so nothing is missed and nothing waits blindly.
prof() {
	local name=$1 pids=$2 cmd=$3
	perf record -q -e cpu-clock -F 4999 -g -p "$pids" -o "$WORK/$name.data" \
		-- bash -c ". '$BENCH_DIR/lib.sh'; $cmd" >/dev/null 2>&1
}

# show NAME FILTER LABEL: where the samples FILTER selects (--pid=, --comm=) went.
show() {
	local name=$1 filter=$2 label=$3
	echo "---- $IMPL $label (N=$N): by object"
	perf report -q -i "$WORK/$name.data" "$filter" --percentage relative --no-children \
		--sort dso -g none 2>/dev/null | grep -v '^$' | head -8
	echo "---- $IMPL $label: top symbols"
	perf report -q -i "$WORK/$name.data" "$filter" --percentage relative --no-children \
		--sort dso,sym -g none 2>/dev/null | grep -v '^$' | head -25
	echo "---- $IMPL $label: inclusive (children), syscall/kernel paths"
	perf report -q -i "$WORK/$name.data" "$filter" --percentage relative --children --sort sym \
		-g none 2>/dev/null \
		| grep -E 'sys_|ctnetlink_|netlink_|nf_conntrack_|page_fault|clear_page|udp' \
		| head -15
	echo
}

# vcs PID: context switches so far (each is a wake-up of the daemon).
vcs() {
	awk '/^voluntary_ctxt_switches/ { v = $2 } /^nonvoluntary_ctxt_switches/ { n = $2 }
		END { print v + n }' /proc/"$1"/status
}

export NS1 NS2 WORK BIN INJECT TOOL_SCHED N IMPL RATE
# Paced first, on fresh daemons, as run.sh measures CPU per entry; the
# CPU and wake-up figures are under perf, so compare them only with
# another profile (perf's own cost is in them). Pinned as run.sh pins to
# measure the receiver (fw1's daemon and the injector on CPU 0, fw2's on
# CPU 1; see bench/README.md "Pinning"): the sender's figure then includes
# some of the injector's kernel work.
PIN=1
pin_sides rx
export PIN_TOOL="$PIN_INJ"
c1=$(cpu_us "$PID_fw1") c2=$(cpu_us "$PID_fw2") w1=$(vcs "$PID_fw1") w2=$(vcs "$PID_fw2")
prof paced "$PID_fw1,$PID_fw2" \
	"inj \"\$NS1\" create -n \"\$N\" -r \"\$RATE\" >/dev/null && wait_cache fw2 external \"\$N\" 60"
echo "---- $IMPL paced (N=$N, $RATE/s): CPU us per entry fw1 $(div $(( $(cpu_us "$PID_fw1") - c1 )) "$N" %.2f)" \
	"fw2 $(div $(( $(cpu_us "$PID_fw2") - c2 )) "$N" %.2f);" \
	"wake-ups per entry fw1 $(div $(( $(vcs "$PID_fw1") - w1 )) "$N" %.4f)" \
	"fw2 $(div $(( $(vcs "$PID_fw2") - w2 )) "$N" %.4f)"
show paced --pid="$PID_fw1" paced-send
show paced --pid="$PID_fw2" paced-recv
pin_sides off
unset PIN_TOOL
daemons_restart || fail "$IMPL daemons did not restart"
prof burst "$PID_fw1,$PID_fw2" \
	"inj \"\$NS1\" create -n \"\$N\" && wait_cache fw2 external \"\$N\" 60"
show burst --pid="$PID_fw1" events-send
show burst --pid="$PID_fw2" events-recv
prof dump "$PID_fw1" "ctl fw1 -i ct >/dev/null"
show dump --comm=conntrackd dump-i  # 1.4.7 dumps in a forked child
# As in run.sh: the primary is gone before the backup commits (a NEW
# listener anywhere on the host makes the kernel build events).
daemon_stop fw1
prof commit "$PID_fw2" "ctl fw2 -c ct"
show commit --pid="$PID_fw2" commit

#!/bin/bash
# Benchmark: Debian's conntrackd 1.4.7 against ours, same run, same machine,
# same scheduling. Two firewalls (namespaces) joined by a veth, FT-FW over
# UDP. Prints, per metric: ours, theirs, ours/theirs. Ratios are reported,
# never asserted; exit status is non-zero only when a scenario could not be
# set up at all. See bench/README.md for the method.
#
#   bench/run.sh [--smoke] [-n "10000 50000 200000"] [-e 4000] [-r rate]
#                [--repeat K] [--deadline secs] [--ours PATH] [--theirs PATH] [-o FILE]
#                [--keep] [--no-sched] [--no-pin] [--build]
# Ours defaults to build/src/conntrackd (or $CTD_OURS); --build compiles it
# out of tree in $BUILD_DIR (/tmp/build-bench) first.
set -u

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
# shellcheck source=lib.sh
. "$BENCH_DIR/lib.sh"

SIZES="10000 50000 200000"
E=4000
PACED_RATE=50000
DEADLINE=45		# 1.4.7 needs ~30 s after an overrun (resync timer)
COMMIT_GRACE=5		# after -c returns, how long to wait for the kernel count
THEIRS=/usr/sbin/conntrackd
OURS=${CTD_OURS:-$REPO/build/src/conntrackd}
SCHED=${BENCH_SCHED-chrt -r 99}
OUT=""
REPEAT=3		# medians of 3: single runs vary by 10-50% on this VM
SMOKE=""
BUILD=""
KEEP=${KEEP:-}
HASHSIZE=32768		# 1.4.7 needs it; both get the same
HASHLIMIT=524288
CT_MAX=262144
NL_BUF=2097152
NL_BUFMAX=8388608
SYNC_SOCKBUF=24985600
# CPU per entry is measured with the daemon alone on its CPU and the
# injector on the other one: fw1's daemon on CPU 0, fw2's on CPU 1, the
# injector with the side not measured. A task sharing a CPU with the
# injector is charged for much of the injector's kernel work here (no IRQ
# time accounting in this kernel): a do-nothing UDP receiver cost 2.9 us
# per entry beside it, 0.4 alone (bench/README.md, "Pinning"). So the
# paced phase runs twice: receiver measured, then sender measured.
PIN=1

while [ $# -gt 0 ]; do
	case $1 in
	--smoke) SMOKE=1; REPEAT=1; SIZES=2000; E=100; PACED_RATE=20000; DEADLINE=5; COMMIT_GRACE=2 ;;
	-n) SIZES=$2; shift ;;
	-e) E=$2; shift ;;
	--repeat) REPEAT=$2; shift ;;
	-r) PACED_RATE=$2; shift ;;
	--deadline) DEADLINE=$2; shift ;;
	--ours) OURS=$2; shift ;;
	--theirs) THEIRS=$2; shift ;;
	-o) OUT=$2; shift ;;
	--keep) KEEP=1 ;;
	--no-sched) SCHED="" ;;
	--no-pin) PIN="" ;;
	--build) BUILD=${BUILD_DIR:-/tmp/build-bench} ;;
	-h|--help) sed -n '2,14p' "$0"; exit 0 ;;
	*) echo "bench/run.sh: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done

# Clients and injector just below the daemons (see ctl() in lib.sh).
if [ -n "$SCHED" ]; then TOOL_SCHED=${BENCH_TOOL_SCHED-chrt -r 98}; else TOOL_SCHED=""; fi
# And the script itself (so ip, bash and date between the timestamps) just
# below them: as an ordinary process it could share a CPU with an RT daemon
# that keeps working after it answered (the resync after a commit, queued
# events) and wait for the load balancer: -c ct showed +60 ms in about one
# run of three (session 3).
if [ -n "$SCHED" ]; then chrt -r -p 97 $$ >/dev/null 2>&1 || true; fi
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
[ "$(id -u)" = 0 ] || fail "must run as root (namespaces, ctnetlink)"
[ -x "$THEIRS" ] || fail "reference daemon $THEIRS not found"
WORK=$(mktemp -d /tmp/ctbench.XXXXXX) || fail "mktemp"
trap bench_cleanup EXIT
trap 'exit 1' INT TERM

build_inject
ns_setup
: >"$WORK/results.raw"
NOTES=""
note() { NOTES="$NOTES$*"$'\n'; log "bench: $*"; }

if [ -n "$BUILD" ]; then
	# Out of tree, as the project requires; never configure in the repo.
	mkdir -p "$BUILD" && (cd "$BUILD" && { [ -f Makefile ] || "$REPO/configure" -q; } \
		&& make -j"$(nproc)" >"$WORK/build.log" 2>&1) \
		&& OURS=$BUILD/src/conntrackd \
		|| note "ours: build in $BUILD failed: $(grep -m1 -E 'error:|undefined reference' "$WORK/build.log")"
fi
IMPLS="theirs"
if [ -x "$OURS" ]; then
	IMPLS="theirs ours"
else
	note "ours: $OURS not found (build it, or set CTD_OURS=path); skipped"
fi

# Same files for both daemons, except each keeps its own log.
gen_confs() {
	gen_conf fw1 192.168.77.1 192.168.77.2
	gen_conf fw2 192.168.77.2 192.168.77.1
}

# ---- scenarios; each returns non-zero if it could not run ---------------

# The sender's CPU per entry: the same paced injection, fw1's daemon alone
# on its CPU (see PIN).
scen_paced_tx() {
	local n=$1 c1 out
	daemons_restart || return 1
	pin_sides tx
	c1=$(cpu_us "$PID_fw1")
	out=$(PIN_TOOL="$PIN_INJ" inj "$NS1" create -n "$n" -r "$PACED_RATE") \
		|| { note "$IMPL N=$n: paced injection failed: $out"; pin_sides off; return 1; }
	wait_cache fw2 external "$n" "$DEADLINE" >/dev/null
	result cpu_tx_us "$(div "$(( $(cpu_us "$PID_fw1") - c1 ))" "$n" %.2f)"
	pin_sides off
}

scen_paced() {
	local n=$1 c1 c2 r1 r2 t out lines secs
	daemons_restart || return 1
	pin_sides rx
	c2=$(cpu_us "$PID_fw2")
	r1=$(rss_bytes "$PID_fw1"); r2=$(rss_bytes "$PID_fw2")
	out=$(PIN_TOOL="$PIN_INJ" inj "$NS1" create -n "$n" -r "$PACED_RATE") \
		|| { note "$IMPL N=$n: paced injection failed: $out"; pin_sides off; return 1; }
	t=$(wait_cache fw2 external "$n" "$DEADLINE")
	result paced_lag_s "$t"
	result cpu_rx_us "$(div "$(( $(cpu_us "$PID_fw2") - c2 ))" "$n" %.2f)"
	result rss_int_B "$(div "$(( $(rss_bytes "$PID_fw1") - r1 ))" "$n" %.0f)"
	result rss_ext_B "$(div "$(( $(rss_bytes "$PID_fw2") - r2 ))" "$n" %.0f)"
	result paced_lost "$(lost_events "$n" paced_overruns)"
	pin_sides off

	read -r lines secs < <(lines_rate fw1 -i)
	[ "$lines" = "$n" ] || note "$IMPL N=$n: -i printed $lines lines, expected $n"
	result dump_i_lps "$(div "$lines" "$secs" %.0f)"
	read -r lines secs < <(lines_rate fw2 -e)
	[ "$lines" = "$n" ] || note "$IMPL N=$n: -e printed $lines lines, expected $n"
	result dump_e_lps "$(div "$lines" "$secs" %.0f)"

	result resync_R_s "$(timed ctl fw1 -R ct)"

	# -B and -n: empty the peer's external cache, time until it is full again.
	ctl fw2 -f external >/dev/null 2>&1
	t=$(now)
	ctl fw1 -B >/dev/null 2>&1
	if wait_cache fw2 external "$n" "$DEADLINE" >/dev/null; then
		result bulk_B_s "$(elapsed "$t" "$(now)")"
	else
		result bulk_B_s "incomplete"
	fi
	ctl fw2 -f external >/dev/null 2>&1
	t=$(now)
	ctl fw2 -n >/dev/null 2>&1
	if wait_cache fw2 external "$n" "$DEADLINE" >/dev/null; then
		result resync_n_s "$(elapsed "$t" "$(now)")"
	else
		result resync_n_s "incomplete"
	fi

	dump_stall "$n"

	# Failover: the primary is gone, the backup commits its external cache
	# (N + the dump_stall entries) into its empty kernel table. Stopping
	# fw1's daemon also matters to the kernel: whether NEW events are
	# built at all depends on listeners anywhere on the host, not in the
	# namespace, and on two real firewalls the peer's daemon is elsewhere.
	daemon_stop fw1
	commit_ct fw2 "$(( n + STALL_M ))"

	scen_paced_tx "$n"
}

# dump_stall N: M more entries, paced, while fw1 streams -i dumps of its N
# in a loop: does replication keep flowing during a big dump?
dump_stall() {
	local n=$1 m loop out t
	m=$(( n / 2 < 10000 ? n / 2 : 10000 ))
	STALL_M=$m
	( while :; do ctl fw1 -i ct >/dev/null 2>&1; done ) &
	loop=$!
	out=$(inj "$NS1" create -n "$m" -o "$n" -r "$PACED_RATE")
	t=$(wait_cache fw2 external $(( n + m )) "$DEADLINE")
	kill "$loop" 2>/dev/null
	wait "$loop" 2>/dev/null
	result stall_lag_s "$t"
}

# lost_events N KEY: events fw1 never received (from its netlink stats);
# records its overrun counter under KEY.
lost_events() {
	local got ovr
	got=$(stat_field fw1 "events received")
	ovr=$(stat_field fw1 "netlink overrun")
	result "$2" "${ovr:-n/a}"
	if [ -n "$got" ]; then
		echo $(( $1 > got ? $1 - got : 0 ))
	else
		echo n/a
	fi
}

# The client returns when the daemon says it is done; the kernel count is
# checked (and waited for, should the daemon answer early) afterwards.
commit_ct() {
	local side=$1 n=$2 t0 t1 cnt
	t0=$(now)
	ctl "$side" -c ct >/dev/null 2>&1
	t1=$(now)
	cnt=$(inj "$(ns_of "$side")" count)
	cnt=${cnt#ct=}; cnt=${cnt%% *}
	if [ "$cnt" -lt "$n" ] 2>/dev/null; then
		# The client has returned: anything still missing is late, not slow.
		cnt=$(inj "$(ns_of "$side")" count -w "$n" -T "$COMMIT_GRACE")
		t1=$(now)
		cnt=${cnt#ct=}; cnt=${cnt%% *}
	fi
	result commit_ct_in_kernel "$cnt"
	if [ "$cnt" -ge "$n" ] 2>/dev/null; then
		result commit_ct_rate "$(div "$n" "$(elapsed "$t0" "$t1")" %.0f)"
	else
		result commit_ct_rate "incomplete"
		note "$IMPL N=$n: -c ct left $cnt/$n in the kernel; $(first_error "$side")"
	fi
	result commit_ct_logged "$(logged_rate "$side" "$n")"
}

# logged_rate SIDE N: N / the daemon's own last "commit has taken X
# seconds" (both daemons log it): the commit without the client's start
# and round trip.
logged_rate() {
	local s
	s=$(grep -o 'commit has taken [0-9.]* seconds' "$WORK/$1.$IMPL.log" 2>/dev/null | tail -1 | awk '{ print $4 }')
	if [ -n "$s" ]; then div "$2" "$s" %.0f; else echo "n/a"; fi
}

scen_burst() {
	local n=$1 out t
	daemons_restart || return 1
	out=$(inj "$NS1" create -n "$n") \
		|| { note "$IMPL N=$n: burst injection failed: $out"; return 1; }
	t=$(wait_cache fw2 external "$n" "$DEADLINE")
	result burst_inject_rate "$(sed 's/.* rate=\([0-9]*\).*/\1/' <<<"$out")"
	result burst_lag_s "$t"
	result burst_lost "$(lost_events "$n" burst_overruns)"
}

scen_exp() {
	local e=$1 out t t0 t1 cnt i
	daemons_restart || return 1
	# the fixed cost in the -c expect figure: a round trip with nothing to
	# commit (netns exec, client start, request, answer)
	result commit_empty_s "$(timed ctl fw2 -c expect)"
	out=$(inj "$NS1" create -n 0 -e "$e") \
		|| { note "$IMPL: expectation injection failed: $out"; return 1; }
	t=$(wait_cache fw2 external "$e" "$DEADLINE")
	result exp_masters_lag_s "$t"
	for i in $(seq 1 100); do
		cnt=$(ctl fw2 -e expect 2>/dev/null | wc -l)
		[ "$cnt" -ge "$e" ] && break
		sleep 0.05
	done
	result exp_in_peer_cache "$cnt"
	daemon_stop fw1		# failover, as in scen_paced
	ctl fw2 -c ct >/dev/null 2>&1
	inj "$NS2" count -w "$e" -T "$COMMIT_GRACE" >/dev/null
	# The masters' NEW events (a small commit keeps the events) reach the
	# internal cache after -c ct returned: let the daemon finish them, or
	# the timed -c expect waits for that work of the previous command.
	wait_cache fw2 internal "$e" "$DEADLINE" >/dev/null
	t0=$(now)
	ctl fw2 -c expect >/dev/null 2>&1
	t1=$(now)
	cnt=$(inj "$NS2" count)
	cnt=${cnt#*exp=}; cnt=${cnt%% *}
	result commit_exp_in_kernel "$cnt"
	if [ "$cnt" -ge "$e" ] 2>/dev/null; then
		result commit_exp_rate "$(div "$e" "$(elapsed "$t0" "$t1")" %.0f)"
		result commit_exp_logged "$(logged_rate fw2 "$e")"
	else
		result commit_exp_rate "incomplete"
		note "$IMPL: -c expect left $cnt/$e in the kernel; $(first_error fw2)"
	fi
}

# first_error SIDE: the daemon's last logged error, to explain a failure.
first_error() {
	local l
	l=$(grep -E '\[ERROR\]|\[WARNING\]' "$WORK/$1.$IMPL.log" 2>/dev/null | tail -1)
	echo "${l:+$1 log: ${l#*] }}"
}

# A daemon that died mid-scenario makes its figures meaningless: say so.
check_alive() {
	local side pid
	for side in fw1 fw2; do
		pid=$(pid_of "$side")
		if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
			note "$IMPL N=$CUR_N: daemon on $side died; its figures are void." \
				"Last output: $(tail -2 "$WORK/$side.$IMPL.out" | tr '\n' ' ')"
			eval "PID_$side="
		fi
	done
}

# run_impl IMPL BIN N: all scenarios for one daemon and one size.
run_impl() {
	IMPL=$1 BIN=$2 CUR_N=$3
	gen_confs
	log "bench: $IMPL N=$CUR_N"
	scen_paced "$CUR_N" && scen_burst "$CUR_N"
	local rc=$?
	check_alive
	daemon_stop fw1
	daemon_stop fw2
	return $rc
}

run_impl_exp() {
	IMPL=$1 BIN=$2 CUR_N=E=$E
	gen_confs
	scen_exp "$E"
	local rc=$?
	check_alive
	daemon_stop fw1
	daemon_stop fw2
	return $rc
}

# one_impl WHICH N|exp: a failure of 1.4.7 is a setup failure; of ours, a note.
one_impl() {
	local which=$1 what=$2 rc
	if [ "$which" = theirs ]; then
		if [ "$what" = exp ]; then run_impl_exp theirs "$THEIRS"; else run_impl theirs "$THEIRS" "$what"; fi \
			|| fail "conntrackd 1.4.7 scenario ${what} could not run (see $WORK)"
		return
	fi
	[[ " $IMPLS " == *" ours "* ]] || return 0
	if [ "$what" = exp ]; then run_impl_exp ours "$OURS"; else run_impl ours "$OURS" "$what"; fi
	rc=$?
	[ $rc = 0 ] || note "ours ${what}: scenario failed (daemon did not start or died)"
}

# Repetitions alternate which daemon goes first, so drift in the machine's
# load does not always favour the same one; the report shows medians.
T_START=$(date -u +%Y-%m-%dT%H:%M:%SZ)
KREPS=1
[ "$REPEAT" -gt 1 ] || KREPS=3
for rep in $(seq 1 "$REPEAT"); do
	if [ $((rep % 2)) = 1 ]; then ORDER="theirs ours"; else ORDER="ours theirs"; fi
	for n in $SIZES; do
		if [ "$n" -gt "$CT_MAX_NS" ]; then
			[ "$rep" = 1 ] && note "N=$n exceeds nf_conntrack_max=$CT_MAX_NS in the namespace; skipped"
			continue
		fi
		CUR_N=$n IMPL=kernel
		for i in $(seq 1 $KREPS); do
			k=$(inj "$NS1" rate -n "$n" | head -1) \
				|| fail "kernel create-rate measurement failed: $k"
			result create_rate "$(sed 's/.* rate=\([0-9]*\).*/\1/' <<<"$k")"
		done
		for which in $ORDER; do
			one_impl "$which" "$n"
		done
	done
	# the kernel's own batched expectation create rate (masters first, not
	# timed), the bound for -c expect as create_rate is for -c ct
	CUR_N=E=$E IMPL=kernel
	for i in $(seq 1 $KREPS); do
		k=$(inj "$NS1" rate -n 0 -e "$E" | head -1) \
			|| fail "kernel expectation create-rate measurement failed: $k"
		result exp_create_rate "$(sed 's/.* exp_rate=\([0-9]*\).*/\1/' <<<"$k")"
	done
	for which in $ORDER; do
		one_impl "$which" exp
	done
done

# ---- report ------------------------------------------------------------

report() {
	echo "# conntrackd benchmark  $T_START .. $(date -u +%H:%M:%SZ)"
	echo "host:     $(hostname)  $(nproc) CPUs  $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
	echo "memory:   $(awk '/MemTotal/ { printf "%d MB", $2 / 1024 }' /proc/meminfo)"
	echo "kernel:   $(uname -r)"
	echo "theirs:   $THEIRS ($("$THEIRS" -v 2>&1 | head -1))"
	if [[ " $IMPLS " == *" ours "* ]]; then
		echo "ours:     $OURS ($("$OURS" -v 2>&1 | head -1); git $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null))"
	else
		echo "ours:     not run"
	fi
	echo "libs:     libnetfilter_conntrack $(pkg-config --modversion libnetfilter_conntrack), libmnl $(pkg-config --modversion libmnl)"
	echo "load:     $LOAD_START at start, $(cut -d' ' -f1-3 /proc/loadavg) at end (1/5/15 min)"
	if awk -v l="${LOAD_START%% *}" -v c="$(nproc)" 'BEGIN { exit !(l > c / 2) }'; then
		echo "WARNING:  the machine was busy when the run started; figures measured at"
		echo "          normal priority (and the kernel create rate) are less reliable"
	fi
	echo "setup:    FT-FW over UDP on a veth; HashSize $HASHSIZE HashLimit $HASHLIMIT;" \
		"NetlinkBufferSize $NL_BUF (max $NL_BUFMAX); scheduling: daemons '${SCHED:-none}', clients+injector '${TOOL_SCHED:-none}';" \
		"nf_conntrack_max $CT_MAX_NS; paced rate $PACED_RATE/s; deadline ${DEADLINE}s;" \
		"paced phase pinned: ${PIN_DESC:-no};" \
		"medians of $REPEAT run(s)"
	echo
	awk -f "$BENCH_DIR/report.awk" "$WORK/results.raw"
	if [ -n "$NOTES" ]; then
		echo
		echo "notes:"
		printf '%s' "$NOTES" | sed 's/^/  - /'
	fi
	echo
	echo "raw values (implementation N metric value, in run order):"
	sed 's/^/  /' "$WORK/results.raw"
}

if [ -z "$OUT" ] && [ -z "$SMOKE" ]; then
	mkdir -p "$BENCH_DIR/results"
	OUT=$BENCH_DIR/results/$(date -u +%Y%m%d-%H%M%S)-$(hostname).txt
fi
if [ -n "$OUT" ]; then
	report | tee "$OUT"
	log "bench: results written to $OUT"
else
	report
fi
exit 0

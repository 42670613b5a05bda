# Helpers for bench/run.sh (sourced). Everything lives under $WORK; the
# namespaces and daemons started here are torn down by bench_cleanup.
# shellcheck shell=bash

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
div() { awk -v a="$1" -v b="$2" -v f="${3:-%.1f}" \
	'BEGIN { if (b == 0 || a == "" || b == "") print "n/a"; else printf f, a / b }'; }
log() { printf '%s\n' "$*" >&2; }
fail() { log "bench: SETUP FAILURE: $*"; exit 1; }

BENCH_PIDS=""
BENCH_NS=""
PID_fw1=""
PID_fw2=""

bench_cleanup() {
	local p ns
	for p in $BENCH_PIDS; do
		kill "$p" 2>/dev/null
	done
	for p in $BENCH_PIDS; do
		wait_gone "$p" 3 || kill -9 "$p" 2>/dev/null
	done
	for ns in $BENCH_NS; do
		ip netns del "$ns" 2>/dev/null
	done
	if [ -n "$WORK" ] && [ -z "${KEEP:-}" ]; then
		rm -rf "$WORK"
	fi
}

# wait_gone PID SECS: poll until the process is gone (deadline in seconds).
wait_gone() {
	local end
	end=$(awk -v s="$2" -v n="$(now)" 'BEGIN { printf "%.3f", n + s }')
	while kill -0 "$1" 2>/dev/null; do
		[ "$(awk -v n="$(now)" -v e="$end" 'BEGIN { print (n > e) }')" = 1 ] && return 1
		sleep 0.02
	done
	return 0
}

build_inject() {
	local src=$BENCH_DIR/inject.c out=$WORK/inject
	# shellcheck disable=SC2046
	cc -O2 -Wall -Wextra -o "$out" "$src" \
		$(pkg-config --cflags --libs libnetfilter_conntrack libmnl) \
		|| fail "cannot build inject.c (need libnetfilter-conntrack-dev, libmnl-dev)"
	INJECT=$out
}

# Two firewalls joined by a veth sync link, each in its own namespace.
ns_setup() {
	NS1=ctbench-$$-fw1
	NS2=ctbench-$$-fw2
	ip netns add "$NS1" || fail "ip netns add $NS1"
	BENCH_NS="$NS1"
	ip netns add "$NS2" || fail "ip netns add $NS2"
	BENCH_NS="$NS1 $NS2"
	ip link add sync0 netns "$NS1" type veth peer name sync0 netns "$NS2" \
		|| fail "cannot create veth pair"
	ip -n "$NS1" addr add 192.168.77.1/24 dev sync0 || fail "addr fw1"
	ip -n "$NS2" addr add 192.168.77.2/24 dev sync0 || fail "addr fw2"
	local ns
	for ns in $NS1 $NS2; do
		ip -n "$ns" link set lo up
		ip -n "$ns" link set sync0 up || fail "link up in $ns"
		# Inherited from init_net and capped by it; raise where allowed.
		ip netns exec "$ns" sysctl -qw \
			net.netfilter.nf_conntrack_max=$CT_MAX 2>/dev/null
	done
	CT_MAX_NS=$(ip netns exec "$NS1" cat /proc/sys/net/netfilter/nf_conntrack_max)
	# The ftp helper must be registered for expectation masters.
	modprobe nf_conntrack_ftp 2>/dev/null
	inj "$NS1" count >/dev/null \
		|| fail "ctnetlink not usable in $NS1"
}

# gen_conf NAME LOCAL PEER: the same file serves both daemons.
gen_conf() {
	cat >"$WORK/$1.conf" <<EOF
Sync {
	Mode FTFW {
		ResendQueueSize 131072
	}
	UDP {
		IPv4_address $2
		IPv4_Destination_Address $3
		Port 3780
		Interface sync0
		SndSocketBuffer $SYNC_SOCKBUF
		RcvSocketBuffer $SYNC_SOCKBUF
		Checksum on
	}
	Options {
		ExpectationSync On
	}
}
General {
	HashSize $HASHSIZE
	HashLimit $HASHLIMIT
	LogFile $WORK/$1.$IMPL.log
	Syslog off
	LockFile $WORK/$1.lock
	UNIX {
		Path $WORK/$1.ctl
	}
	NetlinkBufferSize $NL_BUF
	NetlinkBufferSizeMaxGrowth $NL_BUFMAX
	NetlinkOverrunResync On
	Systemd off
}
EOF
}

ns_of() { if [ "$1" = fw1 ]; then echo "$NS1"; else echo "$NS2"; fi; }

# ctl SIDE ARGS...: the client of the daemon under test. Clients and the
# injector run at RT priority just below the daemons, so that the rest of
# the machine (builds, tests) does not time-slice them.
ctl() {
	local side=$1
	shift
	# shellcheck disable=SC2086
	ip netns exec "$(ns_of "$side")" $TOOL_SCHED "$BIN" -C "$WORK/$side.conf" "$@"
}

# inj NS ARGS...: the injector inside a namespace ($PIN_TOOL: a taskset
# prefix while pin_sides holds).
inj() {
	local ns=$1
	shift
	# shellcheck disable=SC2086
	ip netns exec "$ns" ${PIN_TOOL:-} $TOOL_SCHED "$INJECT" "$@"
}

# pin_sides rx|tx|off: with PIN set and two CPUs or more, fw1's daemon on
# CPU 0 and fw2's on CPU 1, as on two machines; PIN_INJ is the prefix that
# puts the injector with the side not measured: rx (fw2's CPU measured)
# puts it on CPU 0, tx on CPU 1. off: every CPU again.
PIN_INJ=""
PIN_DESC=""
pin_sides() {
	local all
	all="0-$(( $(nproc) - 1 ))"
	if [ -z "${PIN:-}" ] || [ "$(nproc)" -lt 2 ] || ! command -v taskset >/dev/null; then
		PIN_INJ="" PIN_DESC=""
		return 0
	fi
	case $1 in
	rx|tx)
		taskset -pc 0 "$PID_fw1" >/dev/null && taskset -pc 1 "$PID_fw2" >/dev/null
		if [ "$1" = rx ]; then PIN_INJ="taskset -c 0"; else PIN_INJ="taskset -c 1"; fi
		PIN_DESC="fw1 daemon on CPU 0, fw2 daemon on CPU 1, the injector with the side not measured"
		;;
	*)
		taskset -pc "$all" "$PID_fw1" >/dev/null 2>&1
		taskset -pc "$all" "$PID_fw2" >/dev/null 2>&1
		PIN_INJ=""
		;;
	esac
}

# daemon_start SIDE: console mode in the background so $! is the daemon.
daemon_start() {
	local side=$1 i
	rm -f "$WORK/$side.lock" "$WORK/$side.ctl"
	# shellcheck disable=SC2086
	ip netns exec "$(ns_of "$side")" $SCHED "$BIN" -C "$WORK/$side.conf" \
		>>"$WORK/$side.$IMPL.out" 2>&1 &
	eval "PID_$side=$!"
	BENCH_PIDS="$BENCH_PIDS $!"
	for i in $(seq 1 250); do
		if ctl "$side" -s >/dev/null 2>&1; then
			return 0
		fi
		kill -0 "$!" 2>/dev/null || break
		sleep 0.02
	done
	log "bench: $IMPL daemon on $side did not come up:"
	tail -5 "$WORK/$side.$IMPL.out" >&2
	return 1
}

daemon_stop() {
	local side=$1 pid
	eval "pid=\$PID_$side"
	[ -n "$pid" ] || return 0
	ctl "$side" -k >/dev/null 2>&1
	wait_gone "$pid" 5 || { kill "$pid" 2>/dev/null; wait_gone "$pid" 2 || kill -9 "$pid"; }
	wait "$pid" 2>/dev/null
	eval "PID_$side="
}

daemons_restart() {
	daemon_stop fw1
	daemon_stop fw2
	inj "$NS1" flush >/dev/null || return 1
	inj "$NS2" flush >/dev/null || return 1
	daemon_start fw1 && daemon_start fw2
}

# Entries in a cache, from the "current active connections" of `-s`.
cache_count() {
	ctl "$1" -s 2>/dev/null | awk -v want="cache $2:" '
		$0 == want { hit = 1; next }
		hit && /current active connections/ { print $NF; exit }'
}

# stat_field SIDE NAME: a counter of the "netlink stats" block (-s runtime).
stat_field() {
	ctl "$1" -s runtime 2>/dev/null | awk -F: -v k="$2" \
		'$1 ~ k { gsub(/[ \t]/, "", $2); print $2; exit }'
}

# wait_cache SIDE CACHE N SECS: poll until the cache holds N; prints the
# seconds it took, or "incomplete(K/N)" when the deadline passed.
wait_cache() {
	local t0 c end n
	t0=$(now)
	end=$(awk -v s="$4" -v n="$t0" 'BEGIN { printf "%.3f", n + s }')
	while :; do
		c=$(cache_count "$1" "$2")
		if [ -n "$c" ] && [ "$c" -ge "$3" ]; then
			elapsed "$t0" "$(now)"
			return 0
		fi
		n=$(now)
		if [ "$(awk -v n="$n" -v e="$end" 'BEGIN { print (n > e) }')" = 1 ]; then
			echo "incomplete(${c:-?}/$3)"
			return 1
		fi
		sleep 0.01
	done
}

pid_of() { eval "echo \$PID_$1"; }

# CPU time (µs) of all threads: se.sum_exec_runtime (ns precision) when the
# kernel exposes /proc/PID/sched, else utime+stime ticks (10 ms).
cpu_us() {
	if [ -r /proc/"$1"/sched ]; then
		cat /proc/"$1"/task/*/sched 2>/dev/null | awk '
			/^se.sum_exec_runtime/ { t += $NF }
			END { printf "%.0f", t * 1000 }'
		return
	fi
	cat /proc/"$1"/task/*/stat 2>/dev/null | awk -v hz="$(getconf CLK_TCK)" '
		{ sub(/.*\) /, ""); t += $12 + $13 }
		END { printf "%.0f", t * 1e6 / hz }'
}

rss_bytes() { awk '/^VmRSS:/ { print $2 * 1024 }' /proc/"$1"/status 2>/dev/null; }

# timed CMD...: run it, print wall seconds (exit status kept).
timed() {
	local t0 rc
	t0=$(now)
	"$@" >/dev/null 2>&1
	rc=$?
	elapsed "$t0" "$(now)"
	return $rc
}

# lines_rate SIDE OPT: lines/s of a cache dump streamed to a pipe.
lines_rate() {
	local t0 t1 n
	t0=$(now)
	# shellcheck disable=SC2086
	n=$(ctl "$1" "$2" ct 2>/dev/null | $TOOL_SCHED wc -l)
	t1=$(now)
	echo "$n $(elapsed "$t0" "$t1")"
}

# result KEY VALUE: recorded per implementation and N.
result() { printf '%s %s %s %s\n' "$IMPL" "$CUR_N" "$1" "$2" >>"$WORK/results.raw"; }

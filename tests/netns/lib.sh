# shellcheck shell=bash disable=SC2034
# Shared topology and helpers for the real-kernel scenarios (bash only).
#
#   client ==(LAN A, bridge in client ns)== fw1, fw2 ==(LAN B, bridge in
#   server ns)== server;   fw1 <-- sync0 veth --> fw2 (conntrackd traffic)
#
# The floating gateway addresses (VIP_A, VIP_B) live on fw1; failover moves
# them to fw2 as keepalived would.  Every namespace, process and file belongs
# to this run (unique prefix) and is removed by the EXIT/INT/TERM trap.

LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP_DIR=$(cd "$LIB_DIR/../.." && pwd)

: "${CTD_OURS:=$TOP_DIR/build/src/conntrackd}"
: "${CTD_DEBIAN:=/usr/sbin/conntrackd}"
: "${CTD_FW1:=ours}"
: "${CTD_FW2:=ours}"
: "${VERBOSE:=0}"
# CTD_VALGRIND=1: our daemon (the daemon only: its clients, the tools and
# Debian's daemon stay native, as valgrind's start-up would multiply every
# poll) runs under memcheck; every wait_until deadline is CTD_VG_SCALE
# times longer; lib_cleanup stops the daemons with SIGTERM (leak check at
# exit) and fails the scenario on any report.  CTD_VG_OPTS adds options.
: "${CTD_VALGRIND:=0}"
VG_SCALE=1
[ "$CTD_VALGRIND" = 1 ] && VG_SCALE=${CTD_VG_SCALE:-2}

PFX="ctd$$"
NS_CLIENT="$PFX-client"; NS_FW1="$PFX-fw1"; NS_FW2="$PFX-fw2"; NS_SERVER="$PFX-server"
T=""                      # temp dir (configs, sockets, locks, logs)
T_BASE=""                 # removed on exit; T may be a per-case subdir

PIDS=""                   # every background pid we started outside the namespaces
TOPO_IS_UP=0

CLIENT_IP=10.1.0.10;  FW1_A=10.1.0.1;  FW2_A=10.1.0.2;  VIP_A=10.1.0.254
SERVER_IP=10.2.0.10;  FW1_B=10.2.0.1;  FW2_B=10.2.0.2;  VIP_B=10.2.0.254
FW1_S=10.3.0.1;       FW2_S=10.3.0.2
MCAST_GROUP=225.0.0.50; SYNC_PORT=3780
FTP_MARK="ctd-harness-listing"   # appears in the server's LIST output

N_PASS=0; N_FAIL=0; N_SKIP=0

pass() { N_PASS=$((N_PASS + 1)); echo "PASS: $1"; }
fail() { N_FAIL=$((N_FAIL + 1)); echo "FAIL: $1${2:+ ($2)}"; }
skip() { N_SKIP=$((N_SKIP + 1)); echo "SKIP: $1${2:+ ($2)}"; }
note() { echo "  # $*"; }
vlog() { [ "$VERBOSE" = 1 ] && echo "  . $*" >&2; return 0; }

# check NAME CMD... : PASS/FAIL on the exit status of CMD.
check() {
	local name=$1; shift
	if "$@"; then pass "$name"; else fail "$name" "${WHY:-command failed: $*}"; fi
	WHY=""
}

# wait_until TIMEOUT CMD... : poll CMD every 0.1 s until it succeeds or the
# deadline (seconds, may be fractional) passes.
# Under valgrind (CTD_VALGRIND=1) the deadline is VG_SCALE times longer.
wait_until() {
	local timeout=${1%.*}; shift
	local deadline=$(( $(date +%s%N) + ${timeout:-0} * VG_SCALE * 1000000000 ))
	while :; do
		"$@" >/dev/null 2>&1 && return 0
		[ "$(date +%s%N)" -ge "$deadline" ] && return 1
		sleep 0.1
	done
}

need_root() {
	if [ "$(id -u)" != 0 ]; then skip "$1" "needs root"; exit 0; fi
	if ! ip netns add "$PFX-probe" 2>/dev/null; then skip "$1" "network namespaces unavailable"; exit 0; fi
	ip netns del "$PFX-probe"
	modprobe nf_conntrack 2>/dev/null; modprobe nf_conntrack_netlink 2>/dev/null
	modprobe nf_conntrack_ftp 2>/dev/null
	return 0
}

ns_of() {
	case $1 in
	client) echo "$NS_CLIENT";; fw1) echo "$NS_FW1";; fw2) echo "$NS_FW2";;
	server) echo "$NS_SERVER";; *) echo "$1";;
	esac
}
nsx() { local ns; ns=$(ns_of "$1"); shift; ip netns exec "$ns" "$@"; }

# Binary used on a firewall: CTD_FW1/CTD_FW2 = ours|debian|/path.
ctd_bin_for() {
	local which
	case $1 in fw1) which=$CTD_FW1;; fw2) which=$CTD_FW2;; *) which=ours;; esac
	case $which in
	ours) echo "$CTD_OURS";; debian) echo "$CTD_DEBIAN";; *) echo "$which";;
	esac
}
ctd_kind_for() { case $1 in fw1) echo "$CTD_FW1";; fw2) echo "$CTD_FW2";; esac; }

# Tear down the namespaces and everything running in them; the temp dir
# stays (lib_cleanup removes it).
topo_down() {
	local ns p
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	for ns in "$NS_CLIENT" "$NS_FW1" "$NS_FW2" "$NS_SERVER"; do
		# Every process inside our private namespaces was started by us.
		for p in $(ip netns pids "$ns" 2>/dev/null); do kill "$p" 2>/dev/null; done
	done
	for ns in "$NS_CLIENT" "$NS_FW1" "$NS_FW2" "$NS_SERVER"; do
		for p in $(ip netns pids "$ns" 2>/dev/null); do
			wait_until 2 bash -c "! kill -0 $p" || kill -9 "$p" 2>/dev/null
		done
		ip netns del "$ns" 2>/dev/null
	done
	for p in $PIDS; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	PIDS=""
	TOPO_IS_UP=0
	return 0
}

lib_cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	topo_down
	vg_check || rc=1	# (once: finish() may have done it)
	if [ -n "$T_BASE" ] && [ -d "$T_BASE" ]; then
		if [ "${KEEP_TMP:-0}" = 1 ]; then echo "# kept $T_BASE" >&2; else rm -rf "$T_BASE"; fi
	fi
	exit $rc
}

lib_init() {
	T_BASE=$(mktemp -d "/tmp/$PFX.XXXXXX")
	T=$T_BASE
	# the notify script's "logger" lines go to stderr, where tests see them
	mkdir -p "$T_BASE/bin"
	printf '#!/bin/sh\necho "logger: $*" >&2\n' > "$T_BASE/bin/logger"
	chmod +x "$T_BASE/bin/logger"
	trap lib_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

# new_case NAME: fresh temp subdir for one case's files
# same_set NAME LEFT-CMD RIGHT-CMD: PASS when both print the same non-empty
# set of lines; FAIL shows the sizes and the first differences.
same_set() {
	local name=$1 a b
	a=$(eval "$2") b=$(eval "$3")
	if [ -n "$a" ] && [ "$a" = "$b" ]; then
		pass "$name"
	else
		fail "$name" "left $(printf '%s' "$a" | grep -c .) right $(printf '%s' "$b" | grep -c .), diff: $(diff <(printf '%s\n' "$a") <(printf '%s\n' "$b") | grep '^[<>]' | head -n3 | tr '\n' '|')"
	fi
}

# sync1_up: a second veth sync link between fw1 ($FW1_S2) and fw2 ($FW2_S2)
sync1_up() {
	ip -n "$NS_FW1" link add sync1 type veth peer name sync1 netns "$NS_FW2"
	ip -n "$NS_FW1" addr add $FW1_S2/24 dev sync1
	ip -n "$NS_FW2" addr add $FW2_S2/24 dev sync1
	ip -n "$NS_FW1" link set sync1 up
	ip -n "$NS_FW2" link set sync1 up
}

new_case() {
	T=$T_BASE/$1
	rm -rf "$T"; mkdir -p "$T"
}

# Results of a scenario: exit status 1 if anything failed.  Under
# valgrind the daemons are stopped first, so their reports count here.
finish() {
	if [ "$CTD_VALGRIND" = 1 ]; then topo_down; vg_check; fi
	echo "# $(basename "$0"): $N_PASS passed, $N_FAIL failed, $N_SKIP skipped"
	[ "$N_FAIL" -eq 0 ]
}

fw_nft() {
	nsx "$1" nft -f - <<-EOF
	table inet ctdtest {
		ct helper ftp-std { type "ftp" protocol tcp; }
		chain forward {
			type filter hook forward priority filter; policy drop;
			ct state established,related accept
			ip protocol icmp accept
			tcp dport 21 ct state new ct helper set "ftp-std" accept
		}
	}
	EOF
}

topo_up() {
	local ns fw
	[ -n "$T" ] || lib_init
	for ns in "$NS_CLIENT" "$NS_FW1" "$NS_FW2" "$NS_SERVER"; do
		ip netns add "$ns" || return 1
		ip -n "$ns" link set lo up
	done
	# LAN bridges live in the end hosts' namespaces.
	ip -n "$NS_CLIENT" link add br0 type bridge forward_delay 0 stp_state 0
	ip -n "$NS_SERVER" link add br0 type bridge forward_delay 0 stp_state 0
	for fw in fw1 fw2; do
		ns=$(ns_of $fw)
		ip -n "$NS_CLIENT" link add "p-$fw" type veth peer name lan-a netns "$ns"
		ip -n "$NS_SERVER" link add "p-$fw" type veth peer name lan-b netns "$ns"
		ip -n "$NS_CLIENT" link set "p-$fw" master br0 up
		ip -n "$NS_SERVER" link set "p-$fw" master br0 up
		ip -n "$ns" link set lan-a up
		ip -n "$ns" link set lan-b up
	done
	ip -n "$NS_FW1" link add sync0 type veth peer name sync0 netns "$NS_FW2"
	ip -n "$NS_CLIENT" link set br0 up
	ip -n "$NS_SERVER" link set br0 up
	ip -n "$NS_CLIENT" addr add $CLIENT_IP/24 dev br0
	ip -n "$NS_SERVER" addr add $SERVER_IP/24 dev br0
	ip -n "$NS_CLIENT" route add default via $VIP_A
	ip -n "$NS_SERVER" route add default via $VIP_B
	ip -n "$NS_FW1" addr add $FW1_A/24 dev lan-a
	ip -n "$NS_FW1" addr add $FW1_B/24 dev lan-b
	ip -n "$NS_FW1" addr add $FW1_S/24 dev sync0
	ip -n "$NS_FW2" addr add $FW2_A/24 dev lan-a
	ip -n "$NS_FW2" addr add $FW2_B/24 dev lan-b
	ip -n "$NS_FW2" addr add $FW2_S/24 dev sync0
	for fw in fw1 fw2; do
		ns=$(ns_of $fw)
		ip -n "$ns" link set sync0 up
		# multicast for the sync channel must leave through the sync link
		ip -n "$ns" route add 224.0.0.0/4 dev sync0
		nsx $fw sysctl -qw net.ipv4.ip_forward=1
		# no mid-stream pickup: a connection only survives failover if its
		# state was committed by conntrackd
		nsx $fw sysctl -qw net.netfilter.nf_conntrack_tcp_loose=0 2>/dev/null
		fw_nft $fw || return 1
	done
	ip -n "$NS_FW1" addr add $VIP_A/24 dev lan-a
	ip -n "$NS_FW1" addr add $VIP_B/24 dev lan-b
	TOPO_IS_UP=1
	# both LANs must answer (a RST from the gateway proves the path)
	wait_until 10 reach client $VIP_A 9 || { echo "topology: client cannot reach $VIP_A" >&2; return 1; }
	wait_until 10 reach server $VIP_B 9 || { echo "topology: server cannot reach $VIP_B" >&2; return 1; }
}

# single_fw_up [FW]: only that firewall's namespace (default fw1) with its
# sync link (a veth whose peer stays in the same namespace), for daemon
# tests that need no forwarding.
single_fw_up() {
	local fw=${1:-fw1} ns
	ns=$(ns_of "$fw")
	[ -n "$T" ] || lib_init
	ip netns add "$ns" || return 1
	ip -n "$ns" link set lo up
	ip -n "$ns" link add sync0 type veth peer name sync0p
	if [ "$fw" = fw1 ]; then
		ip -n "$ns" addr add $FW1_S/24 dev sync0
		ip -n "$ns" addr add $FW2_S/24 dev sync0p
	else
		ip -n "$ns" addr add $FW2_S/24 dev sync0
		ip -n "$ns" addr add $FW1_S/24 dev sync0p
	fi
	ip -n "$ns" link set sync0 up
	ip -n "$ns" link set sync0p up
	ip -n "$ns" route add 224.0.0.0/4 dev sync0
	TOPO_IS_UP=1
}

# pair_up: fw1 and fw2 joined by the sync link only (sync tests without
# hosts or forwarding).
pair_up() {
	local fw ns
	[ -n "$T" ] || lib_init
	for fw in fw1 fw2; do
		ns=$(ns_of $fw)
		ip netns add "$ns" || return 1
		ip -n "$ns" link set lo up
	done
	ip -n "$NS_FW1" link add sync0 type veth peer name sync0 netns "$NS_FW2"
	ip -n "$NS_FW1" addr add $FW1_S/24 dev sync0
	ip -n "$NS_FW2" addr add $FW2_S/24 dev sync0
	for fw in fw1 fw2; do
		ns=$(ns_of $fw)
		ip -n "$ns" link set sync0 up
		ip -n "$ns" route add 224.0.0.0/4 dev sync0
	done
	TOPO_IS_UP=1
}

# sync_loss FW PERCENT: drop that share of incoming sync datagrams on FW
sync_loss() {
	local match="numgen random mod 100 < $2"
	[ "$2" -ge 100 ] && match=""
	nsx "$1" nft -f - <<-EOF
	table inet ctdloss {
		chain in {
			type filter hook input priority filter; policy accept;
			udp dport $SYNC_PORT $match counter drop
		}
	}
	EOF
}

# reach NS HOST PORT: a TCP connect from NS gets an answer (accept or RST)
reach() {
	nsx "$1" python3 -c '
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), 1).close()
except ConnectionRefusedError:
    pass' "$2" "$3"
}

# ctd_conf FW MODE CHANNEL [EXPECT on|off] [extra General lines]
#   CTD_HASHSIZE: HashSize (default 32768: 1.4.7 skips expectations in -c
#   with 8192 or less)
#   MODE: ftfw|notrack|alarm   CHANNEL: mcast|udp|tcp
ctd_conf() {
	local fw=$1 mode=$2 chan=$3 expect=${4:-on} extra=${5:-} me peer modeblk chanblk
	case $fw in
	fw1) me=$FW1_S; peer=$FW2_S;;
	fw2) me=$FW2_S; peer=$FW1_S;;
	esac
	case $mode in
	ftfw) modeblk="Mode FTFW { }";;
	notrack) modeblk="Mode NOTRACK { }";;
	alarm) modeblk="Mode ALARM { }";;
	esac
	case $chan in
	mcast) chanblk="Multicast {
		IPv4_address $MCAST_GROUP
		Group $SYNC_PORT
		IPv4_interface $me
		Interface sync0
		SndSocketBuffer 1249280
		RcvSocketBuffer 1249280
		Checksum on
	}";;
	udp) chanblk="UDP {
		IPv4_address $me
		IPv4_Destination_Address $peer
		Port $SYNC_PORT
		Interface sync0
		SndSocketBuffer 1249280
		RcvSocketBuffer 1249280
		Checksum on
	}";;
	tcp) chanblk="TCP {
		IPv4_address $me
		IPv4_Destination_Address $peer
		Port $SYNC_PORT
		Interface sync0
		SndSocketBuffer 1249280
		RcvSocketBuffer 1249280
		Checksum on
	}";;
	esac
	# CTD_MODE_EXTRA: lines inside the Mode block (PurgeTimeout, RefreshTime...)
	[ -n "${CTD_MODE_EXTRA:-}" ] && modeblk="${modeblk% \}}
		$CTD_MODE_EXTRA
	}"
	cat > "$T/$fw.conf" <<-EOF
	# generated by tests/netns/lib.sh for $fw ($mode over $chan)
	Sync {
		$modeblk
		$chanblk
		Options {
			ExpectationSync $expect
		}
	}
	General {
		Systemd off
		HashSize ${CTD_HASHSIZE:-32768}
		HashLimit 131072
		LogFile $T/$fw.log
		Syslog off
		LockFile $T/$fw.lock
		UNIX {
			Path $T/$fw.ctl
		}
		NetlinkBufferSize 2097152
		NetlinkBufferSizeMaxGrowth 8388608
		$extra
		Filter From Kernelspace {
			Protocol Accept {
				TCP
				UDP
			}
			Address Ignore {
				IPv4_address 127.0.0.1
				IPv4_address $FW1_A
				IPv4_address $FW2_A
				IPv4_address $FW1_B
				IPv4_address $FW2_B
				IPv4_address $VIP_A
				IPv4_address $VIP_B
				IPv4_address $FW1_S
				IPv4_address $FW2_S
			}
		}
	}
	EOF
}

# ctd_daemon FW BIN ARGS... : the daemon BIN in FW's namespace; our own
# binary under valgrind when CTD_VALGRIND=1.  -d forks without exec, so
# memcheck follows the daemon without --trace-children (each process logs
# to its own vg.<pid>).
VG_DIR="" VG_CHECKED=0
ctd_daemon() {
	local fw=$1 bin=$2; shift 2
	if [ "$CTD_VALGRIND" != 1 ] || [ "$bin" != "$CTD_OURS" ]; then
		nsx "$fw" "$bin" "$@"
		return
	fi
	[ -n "$VG_DIR" ] || { VG_DIR=$T_BASE/valgrind; mkdir -p "$VG_DIR"; }
	# shellcheck disable=SC2086 # CTD_VG_OPTS: several options
	nsx "$fw" valgrind --tool=memcheck --error-exitcode=99 --log-file="$VG_DIR/vg.%p" \
		--track-fds=no --leak-check=full --errors-for-leak-kinds=definite \
		--show-leak-kinds=definite --num-callers=30 \
		--suppressions="$LIB_DIR/../valgrind.supp" ${CTD_VG_OPTS:-} "$bin" "$@"
}

# vg_check: after topo_down, one PASS or FAIL for every memcheck log of
# this run (a log without "ERROR SUMMARY" is a daemon that was SIGKILLed:
# no leak check, but its errors up to then are in the log).
# (a daemon SIGTERMed before its handler is set dies of signal 15: not a report)
VG_REPORT='(Invalid (read|write|free)|Conditional jump|Use of uninitialised|Syscall param|Source and destination overlap|Mismatched free|fishy value|are definitely lost in loss record|Process terminating with default action of signal (4|6|7|8|11) )'
vg_check() {
	local f n=0 killed=0 bad=""
	[ "$CTD_VALGRIND" = 1 ] && [ -n "$VG_DIR" ] && [ "$VG_CHECKED" = 0 ] || return 0
	VG_CHECKED=1
	for f in "$VG_DIR"/vg.*; do
		[ -e "$f" ] || continue
		n=$((n + 1))
		if grep -q -E "ERROR SUMMARY: [1-9]|^==[0-9]+== .*$VG_REPORT" "$f"; then
			bad="$bad $f"
		elif ! grep -q 'ERROR SUMMARY: 0 errors' "$f"; then
			killed=$((killed + 1))
		fi
	done
	if [ -n "$bad" ]; then
		fail "valgrind: $(basename "$0"): memcheck reports in$(for f in $bad; do printf ' %s' "${f##*/}"; done)" \
			"$(grep -h -m3 -E "$VG_REPORT" $bad | tr '\n' '|' | cut -c1-300)"
		for f in $(printf '%s\n' $bad | head -n2); do	# the first two in full
			echo "  # ---- $f"; grep -E '^==[0-9]+== ' "$f" | sed -n '/Memcheck, a memory error detector/,$p' | grep -v -E 'Copyright|Using Valgrind|Command:|^==[0-9]+== *$' | head -n 40 | sed 's/^/  # /'
		done
		return 1
	fi
	pass "valgrind: $(basename "$0"): $n memcheck logs of our daemon, no error and no definite leak ($killed SIGKILLed on purpose: no leak check)"
}

# ctd FW ARGS... : client of FW's binary with FW's config, inside its namespace
ctd() {
	local fw=$1; shift
	nsx "$fw" "$(ctd_bin_for "$fw")" -C "$T/$fw.conf" "$@"
}

# ctd_has FW PATTERN ARGS... : the client output of ARGS contains PATTERN
ctd_has() {
	local fw=$1 pat=$2; shift 2
	ctd "$fw" "$@" 2>/dev/null | grep -qF -- "$pat"
}

ctd_alive() { ctd "$1" -s runtime >/dev/null 2>&1; }

# ctd_start FW [BINARY] : start as -d (CTD_START=console: in the foreground,
# as systemd runs it, in the background of this shell), wait until the
# control socket answers; on failure CTD_ERR says why.
ctd_start() {
	local fw=$1 bin=${2:-$(ctd_bin_for "$1")} rc
	CTD_ERR=""
	if [ ! -x "$bin" ]; then
		CTD_ERR="$fw: binary $bin missing (run scripts/build.sh)"
		return 1
	fi
	if [ "${CTD_START:-d}" = console ]; then
		ctd_daemon "$fw" "$bin" -C "$T/$fw.conf" >>"$T/$fw.out" 2>&1 &
		PIDS="$PIDS $!"
		rc=0
	else
		ctd_daemon "$fw" "$bin" -C "$T/$fw.conf" -d >>"$T/$fw.out" 2>&1
		rc=$?
	fi
	if [ $rc -ne 0 ]; then
		CTD_ERR="$fw: $bin -d exited $rc: $(tail -n3 "$T/$fw.out" "$T/$fw.log" 2>/dev/null | grep -v '^==>' | tr '\n' ' ')"
		return 1
	fi
	if ! wait_until 10 nsx "$fw" "$bin" -C "$T/$fw.conf" -s runtime; then
		CTD_ERR="$fw: control socket $T/$fw.ctl does not answer -s runtime"
		return 1
	fi
}

# pid(s) of conntrackd in FW's namespace (under valgrind the comm is the
# tool's, "memcheck-amd64-"; the command line still names conntrackd)
ctd_pids() {
	local p
	for p in $(ip netns pids "$(ns_of "$1")"); do
		case $(cat /proc/$p/comm 2>/dev/null) in
		conntrackd|lt-conntrackd) echo "$p";;
		memcheck-*) tr '\0' '\n' <"/proc/$p/cmdline" 2>/dev/null | grep -q '/conntrackd$' && echo "$p";;
		esac
	done
}

ctd_stop() {
	local fw=$1 p
	ctd "$fw" -k >/dev/null 2>&1
	# (under valgrind the wait is longer: the leak check runs at exit)
	for p in $(ctd_pids "$fw"); do
		wait_until 5 bash -c "! kill -0 $p" || kill -9 "$p" 2>/dev/null
	done
	return 0
}

# Compare dump lines without the age suffix and ordering.
strip_active() { sed -e 's/ \[active since [0-9]*s\]$//' | sort; }

# ---------------------------------------------------------------- FTP
# ftp_session_open [TAG [pasv|port]]: control connection from client to
# server through the floating gateway, PASV (or PORT) done and kept open;
# sets FTP_PORT to the announced data port.  Not for $(...): it starts a
# background client that later calls need.
# The FTP helpers default to the four-namespace topology; single-namespace
# tests set FTP_SRV_NS, FTP_CLI_NS, FTP_SRV_IP, and per session FTP_BIND,
# FTP_SPORT; FTP_PASV_BASE makes the PASV ports deterministic.
ftp_server_start() {
	local ns=${FTP_SRV_NS:-server} ip=${FTP_SRV_IP:-$SERVER_IP}
	# readiness by file, not by a probe connection (that would add a
	# conntrack entry with a random port to the tables under test)
	rm -f "$T/ftp_server-$ns.ready"
	nsx "$ns" python3 "$LIB_DIR/ftp_server.py" --bind "$ip" --port 21 \
		--mark "$FTP_MARK" --pasv-base "${FTP_PASV_BASE:-0}" \
		--ready "$T/ftp_server-$ns.ready" >>"$T/ftp_server-$ns.log" 2>&1 &
	PIDS="$PIDS $!"
	wait_until 5 test -e "$T/ftp_server-$ns.ready"
}

ftp_session_open() {
	local tag=${1:-s1} mode=${2:-pasv}
	rm -f "$T/ftp-$tag".*
	nsx "${FTP_CLI_NS:-client}" python3 "$LIB_DIR/ftp_client.py" --host "${FTP_SRV_IP:-$SERVER_IP}" --port 21 \
		--bind "${FTP_BIND:-}" --sport "${FTP_SPORT:-0}" \
		--mode "$mode" --ready "$T/ftp-$tag.port" --go "$T/ftp-$tag.go" \
		--timeout "${FTP_DATA_TIMEOUT:-4}" >"$T/ftp-$tag.out" 2>"$T/ftp-$tag.err" &
	eval "FTP_PID_${tag//[^A-Za-z0-9_]/_}=$!"
	PIDS="$PIDS $!"
	if ! wait_until 10 test -s "$T/ftp-$tag.port"; then
		echo "ftp_session_open: no PASV reply; client said: $(cat "$T/ftp-$tag.err")" >&2
		return 1
	fi
	FTP_PORT=$(cat "$T/ftp-$tag.port")
	# The 227 reply must be acknowledged before a failover: a segment the
	# server retransmits after the gateway moved would pass fw2's own FTP
	# helper, which would then create the expectation itself (and make a
	# negative control pass by accident). Wait until nothing is in flight.
	wait_until 5 ftp_ctl_quiet || vlog "ftp_session_open: control connection not quiet"
}

# Every FTP control connection has empty send queues on both ends.
ftp_ctl_quiet() {
	local q
	q=$( { nsx server ss -Htn state established '( sport = :21 )';
	       nsx "${FTP_CLI_NS:-client}" ss -Htn state established '( dport = :21 )'; } |
	     awk '$2 != 0 { print }')
	[ -z "$q" ]
}

# ftp_data_connect [TAG]: open the data connection and expect the listing.
ftp_data_connect() {
	local tag=${1:-s1} pid
	eval "pid=\$FTP_PID_${tag//[^A-Za-z0-9_]/_}"
	touch "$T/ftp-$tag.go"
	wait_until $(( ${FTP_DATA_TIMEOUT:-4} + 8 )) bash -c "! kill -0 $pid"
	wait "$pid" 2>/dev/null
	local rc=$?
	vlog "ftp client rc=$rc: $(cat "$T/ftp-$tag.err")"
	[ $rc -eq 0 ] && grep -q "$FTP_MARK" "$T/ftp-$tag.out"
}

# --------------------------------------------------------------- failover
# Move the floating addresses to fw2 and tell the hosts, as keepalived's
# gratuitous ARP would (a static replace is deterministic; stale entries
# would let traffic keep flowing through fw1).
move_vips_to_fw2() {
	local mac_a mac_b
	ip -n "$NS_FW1" addr del $VIP_A/24 dev lan-a 2>/dev/null
	ip -n "$NS_FW1" addr del $VIP_B/24 dev lan-b 2>/dev/null
	ip -n "$NS_FW2" addr add $VIP_A/24 dev lan-a
	ip -n "$NS_FW2" addr add $VIP_B/24 dev lan-b
	mac_a=$(nsx fw2 cat /sys/class/net/lan-a/address)
	mac_b=$(nsx fw2 cat /sys/class/net/lan-b/address)
	ip -n "$NS_CLIENT" neigh replace $VIP_A lladdr "$mac_a" dev br0 nud reachable
	ip -n "$NS_SERVER" neigh replace $VIP_B lladdr "$mac_b" dev br0 nud reachable
}

# failover_to_fw2 [explicit|script]
#   explicit: conntrackd -c ; conntrackd -c exp  on fw2 (abbreviation as users type it)
#   script:   keepalived's notify script "primary" on fw2
failover_to_fw2() {
	local how=${1:-explicit}
	move_vips_to_fw2
	case $how in
	explicit)
		ctd fw2 -c >>"$T/fw2.client" 2>&1 || return 1
		ctd fw2 -c exp >>"$T/fw2.client" 2>&1 || return 1
		;;
	script)
		# the script exits 0 whatever happens; its errors go to logger
		# (-s: also stderr) and the daemon's log shows what it did
		primary_backup_script fw2 primary >>"$T/fw2.client" 2>&1 || return 1
		! grep -q 'ERROR' "$T/fw2.client" || return 1
		grep -q 'committing all external caches' "$T/fw2.log" || return 1
		;;
	esac
}

# keepalived's notify script run on FW for STATE.  Our copy
# (doc/sync/primary-backup.sh) runs unchanged with its variables from the
# environment; Debian's example gets its three variables substituted.
primary_backup_script() {
	local fw=$1 state=$2 src=$TOP_DIR/doc/sync/primary-backup.sh
	if [ -f "$src" ] && grep -q 'CONNTRACKD_BIN=\${CONNTRACKD_BIN:-' "$src"; then
		nsx "$fw" env CONNTRACKD_BIN="$(ctd_bin_for "$fw")" CONNTRACKD_LOCK="$T/$fw.lock" \
			CONNTRACKD_CONFIG="$T/$fw.conf" PATH="$T_BASE/bin:$PATH" sh "$src" "$state"
		return
	fi
	src=/usr/share/doc/conntrackd/examples/sync/primary-backup.sh
	sed -e "s|^CONNTRACKD_BIN=.*|CONNTRACKD_BIN=$(ctd_bin_for "$fw")|" \
	    -e "s|^CONNTRACKD_LOCK=.*|CONNTRACKD_LOCK=$T/$fw.lock|" \
	    -e "s|^CONNTRACKD_CONFIG=.*|CONNTRACKD_CONFIG=$T/$fw.conf|" \
	    "$src" > "$T/primary-backup-$fw.sh"
	nsx "$fw" env PATH="$T_BASE/bin:$PATH" sh "$T/primary-backup-$fw.sh" "$state"
}

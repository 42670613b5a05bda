#!/bin/bash
# A burst at the kernel's full create rate (bench/inject.c, batched
# ctnetlink, no pacing): N = 20,000 conntracks on fw1 must all reach fw2's
# external cache (same tuples as fw1's kernel), whatever overruns fw1's
# event socket suffered (printed: -s runtime "netlink overrun").
# Our daemon on both firewalls, FT-FW over UDP.  BURST_N overrides N.
set -u
. "$(dirname "$0")/lib.sh"
need_root t-burst
lib_init
: "${BURST_N:=20000}"
CTD_FW1=ours CTD_FW2=ours

INJ=$T_BASE/inject
if ! cc -O2 -o "$INJ" "$TOP_DIR/bench/inject.c" $(pkg-config --cflags --libs libnetfilter_conntrack libmnl) 2>"$T_BASE/inject.err"; then
	skip "t-burst" "bench/inject.c does not build: $(head -n1 "$T_BASE/inject.err")"
	finish; exit
fi
DST=172.16.0.1

tuples() { awk -v d="dst=$DST" '{ for (i = 1; i <= NF; i++) if ($i ~ /^src=/) {
	if ($(i + 1) == d) print $i, $(i + 1), $(i + 2), $(i + 3); break } }' | sort; }
cache_active() { ctd "$1" -s cache 2>/dev/null | awk -v c="cache:$2" '$1 == c { print $NF; exit }'; }
ext_ge() { [ "$(cache_active fw2 external)" -ge "$1" ] 2>/dev/null; }
runtime_field() {	# FW "netlink overrun" | "resync with kernel table" | "events received"
	ctd "$1" -s runtime 2>/dev/null | awk -v f="$2" 'index($0, f ":") { print $NF; exit }'
}

# burst_case NAME NLBUF [stop]: one burst with fw1's NetlinkBufferSize (and
# its max growth) set to NLBUF; "stop": fw1's daemon is SIGSTOPped meanwhile
burst_case() {
	local N="burst[$BURST_N$1]" t0 t1 t2 k e
	new_case "burst$1"
	pair_up || { fail "$N: namespaces"; return; }
	ctd_conf fw1 ftfw udp on
	ctd_conf fw2 ftfw udp on
	sed -i -e "s/NetlinkBufferSize .*/NetlinkBufferSize $2/" \
	    -e "s/NetlinkBufferSizeMaxGrowth .*/NetlinkBufferSizeMaxGrowth $2/" "$T/fw1.conf"
	# room in the caches when BURST_N is large (lib.sh's HashLimit is 131072)
	[ "$BURST_N" -gt 100000 ] && sed -i -e 's/HashLimit .*/HashLimit 524288/' "$T/fw1.conf" "$T/fw2.conf"
	if ! ctd_start fw1 || ! ctd_start fw2; then fail "$N: daemons start" "$CTD_ERR"; topo_down; return; fi

	local p
	[ -n "${3:-}" ] && for p in $(ctd_pids fw1); do kill -STOP "$p"; done
	t0=$(date +%s%N)
	nsx fw1 "$INJ" create -n "$BURST_N" -p tcp -s 100.64.0.1 -d $DST -b 500 >"$T/inject.out" 2>&1
	t1=$(date +%s%N)
	[ -n "${3:-}" ] && for p in $(ctd_pids fw1); do kill -CONT "$p"; done
	note "$N: kernel create: $(cat "$T/inject.out")"
	wait_until 60 ext_ge "$BURST_N"
	t2=$(date +%s%N)
	k=$(nsx fw1 conntrack -L 2>/dev/null | tuples)
	e=$(ctd fw2 -e 2>/dev/null | tuples)
	WHY="fw1 kernel $(printf '%s' "$k" | grep -c .), fw2 -e $(printf '%s' "$e" | grep -c .); first differences: $(diff <(printf '%s\n' "$k") <(printf '%s\n' "$e") | grep '^[<>]' | head -n3 | tr '\n' '|')"
	check "$N: every one of the $BURST_N conntracks is in fw2's external cache (same tuples as fw1's kernel)" \
		eval '[ "$(printf "%s" "$k" | grep -c .)" -eq "$BURST_N" ] && [ "$k" = "$e" ]'
	WHY="fw1 -i has $(cache_active fw1 internal)"
	check "$N: fw1's internal cache holds all $BURST_N too" eval "[ \"\$(cache_active fw1 internal)\" -eq $BURST_N ]"
	note "$N: burst took $(( (t1 - t0) / 1000000 )) ms; fw2 complete $(( (t2 - t1) / 1000000 )) ms after its end"
	note "$N: fw1 -s runtime: netlink overrun $(runtime_field fw1 'netlink overrun'), resync with kernel table $(runtime_field fw1 'resync with kernel table'), events received $(runtime_field fw1 'events received'), buffer $(runtime_field fw1 'current buffer size (in bytes)')"
	if [ -n "${3:-}" ]; then
		WHY="fw1 -s runtime: netlink overrun $(runtime_field fw1 'netlink overrun')"
		check "$N: fw1's -s runtime counts the overrun it had to recover from" \
			eval '[ "$(runtime_field fw1 "netlink overrun")" -gt 0 ]'
	fi
	note "$N: fw2 -s network: Packets lost $(ctd fw2 -s network 2>/dev/null | awk '/Packets lost:/ { print $NF; exit }')"
	topo_down
}

burst_case "" 2097152
# a 128 KB event buffer that may not grow, and fw1's daemon stopped
# (SIGSTOP) for the whole burst: an overrun is certain, and the overrun
# resync must still leave nothing behind
burst_case ",overrun" 131072 stop

# the table changes completely while fw1's daemon is stopped: its overrun
# resync must also find what disappeared, and fw2 must forget it
churn_case() {
	local N="burst[churn]" p
	new_case churn
	pair_up || { fail "$N: namespaces"; return; }
	ctd_conf fw1 ftfw udp on
	ctd_conf fw2 ftfw udp on
	sed -i -e "s/NetlinkBufferSize .*/NetlinkBufferSize 131072/" \
	    -e "s/NetlinkBufferSizeMaxGrowth .*/NetlinkBufferSizeMaxGrowth 131072/" "$T/fw1.conf"
	if ! ctd_start fw1 || ! ctd_start fw2; then fail "$N: daemons start" "$CTD_ERR"; topo_down; return; fi
	nsx fw1 "$INJ" create -n 5000 -p tcp -s 100.64.0.1 -d $DST -b 500 >/dev/null 2>&1
	wait_until 20 ext_ge 5000
	for p in $(ctd_pids fw1); do kill -STOP "$p"; done
	nsx fw1 "$INJ" flush >/dev/null 2>&1
	nsx fw1 "$INJ" create -n 5000 -o 20000 -p tcp -s 100.64.0.1 -d $DST -b 500 >/dev/null 2>&1
	for p in $(ctd_pids fw1); do kill -CONT "$p"; done
	k=$(nsx fw1 conntrack -L 2>/dev/null | tuples)
	wait_until 30 eval '[ "$(ctd fw2 -e 2>/dev/null | tuples)" = "$k" ]'
	e=$(ctd fw2 -e 2>/dev/null | tuples)
	WHY="fw1 kernel $(printf '%s' "$k" | grep -c .), fw2 -e $(printf '%s' "$e" | grep -c .); overruns $(runtime_field fw1 'netlink overrun'); first differences: $(diff <(printf '%s\n' "$k") <(printf '%s\n' "$e") | grep '^[<>]' | head -n3 | tr '\n' '|')"
	check "$N: 5000 replaced while fw1 was stopped: fw2 -e equals fw1's new kernel table (old ones gone)" \
		eval '[ "$(printf "%s" "$k" | grep -c .)" -eq 5000 ] && [ "$k" = "$e" ]'
	note "$N: fw1 netlink overrun $(runtime_field fw1 'netlink overrun'), resync with kernel table $(runtime_field fw1 'resync with kernel table')"
	topo_down
}
churn_case
finish

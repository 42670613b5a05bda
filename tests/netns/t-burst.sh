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

N="burst[$BURST_N]"
new_case burst
pair_up || { fail "$N: namespaces"; finish; exit; }
ctd_conf fw1 ftfw udp on
ctd_conf fw2 ftfw udp on
if ! ctd_start fw1 || ! ctd_start fw2; then fail "$N: daemons start" "$CTD_ERR"; finish; exit; fi

t0=$(date +%s%N)
nsx fw1 "$INJ" create -n "$BURST_N" -p tcp -s 100.64.0.1 -d $DST -b 500 >"$T/inject.out" 2>&1
t1=$(date +%s%N)
note "$N: kernel create: $(cat "$T/inject.out")"
WHY="fw2 external cache has $(cache_active fw2 external) of $BURST_N"
wait_until 30 ext_ge "$BURST_N"
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
note "$N: fw2 -s network: Packets lost $(ctd fw2 -s network 2>/dev/null | awk '/Packets lost:/ { print $NF; exit }')"
topo_down
finish

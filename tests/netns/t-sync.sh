#!/bin/bash
# shellcheck disable=SC2034,SC2046,SC2010 # globals read by lib.sh; lists split on purpose
# Sync core beyond the failover: two firewalls joined by the sync link only,
# conntracks created on fw1 with ctnetlink (bench/inject.c) or conntrack(8).
#
#  * FT-FW recovers NEW and DESTROY messages lost on the link (NACK);
#    NOTRACK does not; updates propagate (mark reaches fw2's external cache);
#  * -n (resync request) and -B (bulk) refill a restarted peer (FT-FW, NOTRACK);
#  * ALARM mode converges despite loss thanks to its refresh timer;
#  * DisableExternalCache writes straight into fw2's kernel;
#  * -t flushes the kernel after PurgeTimeout.
# Pairs as in t-failover.sh: CTD_FW1/CTD_FW2, default ours->ours, debian->ours,
# ours->debian; CHANNEL=udp (default) | mcast | tcp.
set -u
. "$(dirname "$0")/lib.sh"
need_root t-sync
lib_init
: "${CHANNEL:=udp}"
if [ -n "$(printenv CTD_FW1)$(printenv CTD_FW2)" ]; then
	PAIRS="$CTD_FW1:$CTD_FW2"
else
	PAIRS="ours:ours debian:ours ours:debian"
fi

INJ=$T_BASE/inject
if ! cc -O2 -o "$INJ" "$TOP_DIR/bench/inject.c" $(pkg-config --cflags --libs libnetfilter_conntrack libmnl) 2>"$T_BASE/inject.err"; then
	skip "t-sync" "bench/inject.c does not build: $(head -n1 "$T_BASE/inject.err")"
	finish; exit
fi
SRC=100.64.0.1 DST=172.16.0.1    # inject's entries: $SRC + i -> $DST

ext_count() { ctd "$1" -e 2>/dev/null | grep -c "dst=$DST "; }
int_count() { ctd "$1" -i 2>/dev/null | grep -c "dst=$DST "; }
k_count() { nsx "$1" conntrack -L 2>/dev/null | grep -c "dst=$DST "; }
# datagrams a daemon received on the sync channel (-s network)
pkts_recv() { ctd "$1" -s network 2>/dev/null | sed -n -E 's/.* ([0-9]+) Pckts recv.*/\1/p' | head -n1; }
hello_done() { [ "$(pkts_recv fw1)" -ge 3 ] && [ "$(pkts_recv fw2)" -ge 3 ]; }
ext_is() { [ "$(ext_count "$1")" -eq "$2" ]; }
int_is() { [ "$(int_count "$1")" -eq "$2" ]; }
k_is() { [ "$(k_count "$1")" -eq "$2" ]; }
inject() { nsx fw1 "$INJ" create -n "$1" -p tcp -s $SRC -d $DST -b 250 "${@:2}" >/dev/null 2>"$T/inject.err"; }

# start_pair MODE [expect]: fresh namespaces and daemons
start_pair() {
	new_case "$K1-$K2-$1-$CHANNEL-$RANDOM"
	pair_up || return 1
	ctd_conf fw1 "$1" "$CHANNEL" on
	ctd_conf fw2 "$1" "$CHANNEL" on
	if ! ctd_start fw1 || ! ctd_start fw2; then
		fail "$N: daemons start ($1/$CHANNEL)" "$CTD_ERR"; topo_down; return 1
	fi
}

run_pair() {
	N="sync[$K1->$K2 $CHANNEL]"
	CTD_FW1=$K1 CTD_FW2=$K2

	# --- a burst lost on the link (as in spec 6.8): FT-FW recovers it by
	# NACK, NOTRACK does not.  Deterministic: the link drops everything
	# while the first 100 are created, then works again.
	for mode in ftfw notrack; do
		start_pair $mode || continue
		# first a message that arrives, so that fw2 tracks fw1's sequence
		# (the first message after start-up cannot reveal a gap), and the
		# HELLO handshake done both ways (spec 6.3: a HELLO still in flight
		# after the outage would release fw1's resend queue)
		nsx fw1 conntrack -I -p udp -s 198.51.100.1 -d 198.51.100.2 --sport 1 --dport 2 -t 600 >/dev/null 2>&1
		wait_until 5 ctd_has fw2 "src=198.51.100.1 " -e
		WHY="packets received: fw1 $(pkts_recv fw1), fw2 $(pkts_recv fw2)"
		wait_until 10 hello_done || fail "$N: $mode: handshake" "$WHY"
		sync_loss fw2 100
		inject 100
		wait_until 5 int_is fw1 100
		sleep 0.5	# let the sender flush its batch into the dead link (no observable to poll)
		nsx fw2 nft delete table inet ctdloss
		inject 100 -o 100
		if [ $mode = ftfw ]; then
			WHY="fw2 -e has $(ext_count fw2) of 200"
			check "$N: ftfw: 100 NEW lost on the link are recovered" wait_until 15 ext_is fw2 200
			nsx fw1 conntrack -U -s 100.64.0.1 -m 7 >/dev/null 2>&1
			WHY="fw2 -e: $(ctd fw2 -e | grep 'src=100.64.0.1 ' | head -n1)"
			check "$N: ftfw: an update (mark=7) arrives" \
				wait_until 10 eval "ctd fw2 -e 2>/dev/null | grep 'src=100.64.0.1 ' | grep -q 'mark=7'"
			sync_loss fw2 100
			nsx fw1 "$INJ" flush >/dev/null 2>&1
			wait_until 5 int_is fw1 0
			sleep 0.5
			nsx fw2 nft delete table inet ctdloss
			WHY="fw2 -e still has $(ext_count fw2)"
			check "$N: ftfw: 200 DESTROY lost on the link are recovered" wait_until 15 ext_is fw2 0
		else
			wait_until 10 ext_is fw2 200
			WHY="fw2 -e has $(ext_count fw2), expected 100 (only the second burst)"
			check "$N: notrack: a burst lost on the link stays lost (no retransmission)" ext_is fw2 100
		fi
		topo_down
	done

	# --- resync (-n) and bulk (-B) after a peer restart, FT-FW and NOTRACK
	for mode in ftfw notrack; do
		start_pair $mode || continue
		inject 300
		wait_until 15 ext_is fw2 300
		ctd_stop fw2
		if ! ctd_start fw2; then fail "$N: $mode: fw2 restarts" "$CTD_ERR"; topo_down; continue; fi
		WHY="fw2 -e has $(ext_count fw2) before any request"
		ext_is fw2 0 || note "$N: $mode: fw2's external cache not empty after restart ($(ext_count fw2))"
		ctd fw2 -n >/dev/null 2>&1
		WHY="fw2 -e has $(ext_count fw2) of 300"
		check "$N: $mode: -n on a restarted fw2 brings all 300 back" wait_until 15 ext_is fw2 300
		ctd fw2 -f external >/dev/null 2>&1
		wait_until 5 ext_is fw2 0
		ctd fw1 -B >/dev/null 2>&1
		WHY="fw2 -e has $(ext_count fw2) of 300"
		check "$N: $mode: -B on fw1 resends all 300" wait_until 15 ext_is fw2 300
		topo_down
	done

	# --- ALARM: periodic refresh heals loss
	if CTD_MODE_EXTRA="RefreshTime 2
		CacheTimeout 30" start_pair alarm; then
		sync_loss fw2 30
		inject 200
		WHY="fw2 -e has $(ext_count fw2) of 200"
		check "$N: ALARM with 30% loss converges by refresh" wait_until 25 ext_is fw2 200
		topo_down
	fi

	# --- DisableExternalCache: straight into fw2's kernel
	if CTD_MODE_EXTRA="DisableExternalCache on" start_pair ftfw; then
		inject 100
		WHY="fw2 kernel has $(k_count fw2) of 100"
		check "$N: DisableExternalCache: entries go straight into fw2's kernel" wait_until 15 k_is fw2 100
		nsx fw1 "$INJ" flush >/dev/null 2>&1
		WHY="fw2 kernel still has $(k_count fw2)"
		check "$N: DisableExternalCache: destroys delete them from fw2's kernel" wait_until 15 k_is fw2 0
		topo_down
	fi

	# --- a big commit: -c returns only when the kernel holds everything
	if start_pair ftfw; then
		inject 20000 -e 500
		nct=$(k_count fw1)	# 20000 plus the expectations' masters
		WHY="fw2 -e has $(ext_count fw2) of $nct, -e expect $(ctd fw2 -e expect 2>/dev/null | grep -c proto=) of 500"
		if wait_until 30 eval "ext_is fw2 $nct && [ \$(ctd fw2 -e expect 2>/dev/null | grep -c proto=) -eq 500 ]"; then
			t0=$(date +%s%N)
			ctd fw2 -c >/dev/null 2>&1
			t1=$(date +%s%N)
			kc=$(k_count fw2) ke=$(nsx fw2 conntrack -L expect 2>/dev/null | grep -c proto=)
			WHY="right after -c returned: kernel has $kc of $nct conntracks"
			check "$N: -c returns only after all $nct conntracks are in the kernel" test "$kc" -eq "$nct"
			WHY="right after -c returned: kernel has $ke of 500 expectations"
			check "$N: ... and all 500 expectations" test "$ke" -eq 500
			note "$N: -c of $nct ct + 500 exp took $(( (t1 - t0) / 1000000 )) ms; log: $(grep 'commit has taken' "$T/fw2.log" | sed 's/.*taken //' | tr '\n' ' ')"
		else
			fail "$N: $nct conntracks + 500 expectations reach fw2" "$WHY"
		fi
		topo_down
	fi

	# --- IPv6 conntracks: synced and committed with the same tuples
	if start_pair ftfw; then
		for i in $(seq 1 20); do
			nsx fw1 conntrack -I -p tcp -s 2001:db8::1 -d 2001:db8::2 --sport $((40000 + i)) \
				--dport 443 --state ESTABLISHED -t 600 -u ASSURED >/dev/null 2>&1
		done
		v6() { grep -o 'src=2001:db8::1 dst=2001:db8::2 sport=[0-9]* dport=443' | sort; }
		WHY="fw2 -e has $(ctd fw2 -e | grep -c 'dst=2001:db8::2 ') of 20"
		check "$N: 20 IPv6 conntracks reach fw2" \
			wait_until 10 eval "[ \$(ctd fw2 -e 2>/dev/null | grep -c 'dst=2001:db8::2 ') -eq 20 ]"
		WHY="$(diff <(ctd fw1 -i | v6) <(ctd fw2 -e | v6) | head -n3 | tr '\n' '|')"
		check "$N: IPv6 tuples identical in fw1 -i and fw2 -e" \
			eval "[ \"\$(ctd fw1 -i | v6)\" = \"\$(ctd fw2 -e | v6)\" ] && [ -n \"\$(ctd fw1 -i | v6)\" ]"
		ctd fw2 -c >/dev/null 2>&1
		WHY="$(diff <(nsx fw1 conntrack -L -f ipv6 2>/dev/null | v6) <(nsx fw2 conntrack -L -f ipv6 2>/dev/null | v6) | head -n3 | tr '\n' '|')"
		check "$N: -c puts the same 20 IPv6 conntracks in fw2's kernel" \
			eval "[ \"\$(nsx fw1 conntrack -L -f ipv6 2>/dev/null | v6)\" = \"\$(nsx fw2 conntrack -L -f ipv6 2>/dev/null | v6)\" ] && [ \$(nsx fw2 conntrack -L -f ipv6 2>/dev/null | v6 | wc -l) -eq 20 ]"
		topo_down
	fi

	# --- commit, then -t flushes fw2's kernel after PurgeTimeout
	if CTD_MODE_EXTRA="PurgeTimeout 2" start_pair ftfw; then
		inject 100
		wait_until 15 ext_is fw2 100
		ctd fw2 -c >/dev/null 2>&1
		WHY="fw2 kernel has $(k_count fw2) of 100 after -c"
		check "$N: -c puts the 100 entries in fw2's kernel" wait_until 5 k_is fw2 100
		ctd fw2 -t >/dev/null 2>&1
		WHY="log: $(grep -E 'flushing' "$T/fw2.log" | tail -n2 | tr '\n' '|')"
		check "$N: -t logs the scheduled flush" grep -q 'flushing conntrack table in 2 secs' "$T/fw2.log"
		WHY="fw2 kernel still has $(k_count fw2) after PurgeTimeout"
		check "$N: -t empties fw2's kernel after PurgeTimeout" wait_until 8 k_is fw2 0
		topo_down
	fi
}

for pair in $PAIRS; do
	K1=${pair%%:*} K2=${pair#*:}
	run_pair
done
finish

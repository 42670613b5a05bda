#!/bin/bash
# Reliable sync (FT-FW) proven on real kernels, our daemon on both firewalls
# joined by the sync link only (UDP channel unless said):
#
#  1. loss: 30% of the sync datagrams dropped on both sides, a burst of
#     10,000 conntracks + 500 expectations reaches fw2 complete; -s network
#     shows the losses; NOTRACK under the same loss is measured only;
#  2. cold start: the burst 0.3 s after both daemons start, 10% loss;
#  3. large tables: 200,000 conntracks via -B and via -n;
#  4. peer restart: fw2, then fw1, SIGKILLed mid-burst and restarted;
#  5. -B and -n checked by set equality of the tuples on both sides;
#  6. link failover between two channels (Default on sync0);
#  7. scenario 1 (UDP) with Debian's conntrackd 1.4.7 receiving on fw2.
# SCENARIOS="1 2 3 4 5 6" picks some.  Entries come from bench/inject.c.
set -u
. "$(dirname "$0")/lib.sh"
need_root t-reliable
lib_init
# Sizes (smaller by default under valgrind, CTD_VALGRIND=1, where the daemon
# runs 20-50x slower on CPU: same losses, restarts and bulk paths, fewer
# entries): REL_N conntracks + REL_E expectations in the loss and cold-start
# bursts, REL_LARGE in scenario 3, REL_RESTART_N (+ REL_RESTART_E) paced
# over ~2 s in scenario 4.
if [ "$CTD_VALGRIND" = 1 ]; then
	: "${REL_N:=2000}" "${REL_E:=100}" "${REL_LARGE:=20000}" "${REL_RESTART_N:=4000}" "${REL_RESTART_E:=50}"
fi
: "${REL_N:=10000}" "${REL_E:=500}" "${REL_LARGE:=200000}" "${REL_RESTART_N:=20000}" "${REL_RESTART_E:=200}"
: "${SCENARIOS:=1 2 3 4 5 6 7}"    # LOSS_CHANNELS="udp mcast": channels of scenario 1
CTD_FW1=${REL_FW1:-ours} CTD_FW2=${REL_FW2:-ours}	# REL_FW*: exploration only

INJ=$T_BASE/inject
if ! cc -O2 -o "$INJ" "$TOP_DIR/bench/inject.c" $(pkg-config --cflags --libs libnetfilter_conntrack libmnl) 2>"$T_BASE/inject.err"; then
	skip "t-reliable" "bench/inject.c does not build: $(head -n1 "$T_BASE/inject.err")"
	finish; exit
fi
SRC=100.64.0.1 DST=172.16.0.1    # inject's entries: $SRC + i -> $DST (masters 11.0.0.0/8 -> $DST)

# Tuples of conntracks (src dst sport dport of the original direction) and of
# expectations (the expected tuple), one per line, sorted: for set equality.
tuples() { awk -v d="dst=$DST" '{ for (i = 1; i <= NF; i++) if ($i ~ /^src=/) {
	if ($(i + 1) == d) print $i, $(i + 1), $(i + 2), $(i + 3); break } }' | sort; }
ext_ct() { ctd "$1" -e 2>/dev/null | tuples; }
int_ct() { ctd "$1" -i 2>/dev/null | tuples; }
ext_exp() { ctd "$1" -e expect 2>/dev/null | tuples; }
int_exp() { ctd "$1" -i expect 2>/dev/null | tuples; }
k_ct() { nsx "$1" conntrack -L 2>/dev/null | tuples; }
k_exp() { nsx "$1" conntrack -L expect 2>/dev/null | tuples; }
ext_count() { ext_ct "$1" | wc -l; }
int_count() { int_ct "$1" | wc -l; }
ext_exp_count() { ext_exp "$1" | wc -l; }
# cheap counters for polling (-s cache: "cache:external active objects: N")
cache_active() { ctd "$1" -s cache 2>/dev/null | awk -v c="cache:$2" '$1 == c { print $NF; exit }'; }
ext_active_ge() { [ "$(cache_active "$1" external)" -ge "$2" ] 2>/dev/null; }
int_active_ge() { [ "$(cache_active "$1" internal)" -ge "$2" ] 2>/dev/null; }
k_total() { nsx "$1" "$INJ" count | sed -n -E 's/^ct=([0-9]+) .*/\1/p'; }
ext_is() { [ "$(ext_count "$1")" -eq "$2" ]; }
exp_is() { [ "$(ext_exp_count "$1")" -eq "$2" ]; }
# -s network figures
net_field() {	# FW "Packets lost" | "Pckts sent" | "Pckts recv"
	ctd "$1" -s network 2>/dev/null | awk -v f="$2" '
		f == "Packets lost" && /Packets lost:/ { print $NF; exit }
		f == "Pckts sent" && /Pckts sent/ { print $1; exit }
		f == "Pckts recv" && /Pckts recv/ { print $(NF - 2); exit }'
}
inject() { nsx fw1 "$INJ" create -p tcp -s $SRC -d $DST -b 250 "$@" >>"$T/inject.out" 2>&1; }

# start_pair NAME MODE [CHANNEL]: fresh namespaces, both daemons
# (CONF_HOOK FW edits a config before the start)
start_pair() {
	new_case "$1-$RANDOM"
	pair_up || { fail "$1: namespaces"; return 1; }
	ctd_conf fw1 "$2" "${3:-udp}" on
	ctd_conf fw2 "$2" "${3:-udp}" on
	[ -n "${CONF_HOOK:-}" ] && { $CONF_HOOK fw1; $CONF_HOOK fw2; }
	if ! ctd_start fw1 || ! ctd_start fw2; then
		fail "$1: daemons start" "$CTD_ERR"; topo_down; return 1
	fi
}

# both directions lossy (fw2 loses data, fw1 loses ACK/NACK/ALIVE)
lossy() { sync_loss fw1 "$1" && sync_loss fw2 "$1"; }
loss_off() { nsx fw1 nft delete table inet ctdloss 2>/dev/null; nsx fw2 nft delete table inet ctdloss 2>/dev/null; }
dropped() { nsx "$1" nft list table inet ctdloss 2>/dev/null | sed -n -E 's/.*packets ([0-9]+).*/\1/p' | head -n1; }

rsq_len() { ctd "$1" -s rsqueue 2>/dev/null | sed -n -E '1s/.*len=([0-9]+).*/\1/p'; }
rsq_sample() { local l; l=$(rsq_len fw1); [ "${l:-0}" -gt "$RSQ_MAX" ] && RSQ_MAX=$l; return 0; }

# settled FW: its external cache size has not changed for 1 s (polled)
SETTLE_V=-1 SETTLE_T=0
settled() {
	local v now
	v=$(cache_active "$1" external) now=$(date +%s%N)
	if [ "$v" != "$SETTLE_V" ]; then SETTLE_V=$v SETTLE_T=$now; return 1; fi
	[ $((now - SETTLE_T)) -ge 1000000000 ]
}

restart_killed() {	# restart_killed FW: after a SIGKILL, as keepalived's script would
	rm -f "$T/$1.lock"
	ctd_start "$1"
}

# ------------------------------------------------------------ 1. loss
scenario_1() {
	local ch
	for ch in ${LOSS_CHANNELS:-udp mcast}; do loss_case "$ch"; done
}
loss_case() {
	local N="loss[$1${LOSS_TAG:+ $LOSS_TAG}]" nct sent ch=$1
	start_pair loss ftfw "$ch" || return
	lossy 30
	local t0 t1
	t0=$(date +%s%N)
	inject -n $REL_N -e $REL_E
	nct=$(k_total fw1)	# REL_N plus the REL_E ftp masters
	WHY=""
	RSQ_MAX=0
	if ! wait_until 60 eval "rsq_sample; ext_active_ge fw2 $nct"; then
		WHY="fw2 external cache has $(cache_active fw2 external) of $nct after 60 s"
	fi
	t1=$(date +%s%N)
	[ -z "$WHY" ] && note "$N: fw2 held all $nct conntracks $(( (t1 - t0) / 1000000 )) ms after the burst began"
	check "$N: 30% loss both ways: fw2's external cache holds all $nct conntracks of fw1's kernel" \
		eval '[ -z "$WHY" ] && [ "$(ext_ct fw2)" = "$(k_ct fw1)" ]'
	wait_until 30 exp_is fw2 $REL_E
	WHY="fw2 -e expect has $(ext_exp_count fw2) of $REL_E"
	check "$N: ... and the $REL_E expectations (same tuples as fw1's kernel)" \
		eval '[ "$(ext_exp fw2)" = "$(k_exp fw1)" ]'
	local lost drop2 drop1
	lost=$(net_field fw2 "Packets lost") drop2=$(dropped fw2) drop1=$(dropped fw1)
	sent=$(net_field fw1 "Pckts sent")
	WHY="fw2 -s network Packets lost: ${lost:-?}"
	check "$N: fw2's -s network counts the losses (Packets lost > 0)" test "${lost:-0}" -gt 0
	note "$N: nft dropped $drop2 datagrams into fw2 and $drop1 into fw1; fw1 sent $sent, fw2 received $(net_field fw2 "Pckts recv"), fw2 lost $lost; fw1 rsqueue peaked at $RSQ_MAX"
	# fw2 saw gaps (lost > 0) and still holds every entry: what it lost
	# came again from fw1's resend queue (NACK or ALIVE/ACK timeout)
	# (the queue's peak is sampled, so only printed: a poll may miss it)
	WHY="fw2 lost ${lost:-?} seqs; nft dropped ${drop2:-?} datagrams into fw2"
	check "$N: fw1 retransmitted: fw2 missed datagrams (nft drops, seq gaps) yet holds every entry" \
		eval '[ "${drop2:-0}" -gt 0 ] && [ "${lost:-0}" -gt 0 ] && [ "$(ext_ct fw2)" = "$(k_ct fw1)" ]'
	WHY="fw1 -s rsqueue: $(ctd fw1 -s rsqueue 2>&1 | head -n1)"
	check "$N: fw1's resend queue is emptied by fw2's ACKs once everything arrived" \
		wait_until 20 eval '! ctd fw1 -s rsqueue 2>/dev/null | grep -q "^object"'
	topo_down

	# NOTRACK under the same loss: measured, not asserted
	start_pair loss-notrack notrack "$ch" || return
	lossy 30
	inject -n $REL_N -e $REL_E
	nct=$(k_total fw1)
	# no retransmission: wait until the count stops moving for a second
	wait_until 10 eval "ext_active_ge fw2 $nct || settled fw2"
	note "$N: NOTRACK with 30% loss: fw2 holds $(ext_count fw2) of $nct conntracks, $(ext_exp_count fw2) of $REL_E expectations"
	topo_down
}

# ------------------------------------------------------ 2. cold start
scenario_2() {
	local N="cold-start" nct
	new_case "cold-$RANDOM"
	pair_up || { fail "$N: namespaces"; return; }
	ctd_conf fw1 ftfw udp on
	ctd_conf fw2 ftfw udp on
	lossy 10
	# both started in the background at once, the burst 0.3 s later: the
	# HELLO handshake is still in flight when the first NEW messages go
	# (ctd_daemon: under valgrind when CTD_VALGRIND=1)
	ctd_daemon fw1 "$CTD_OURS" -C "$T/fw1.conf" >>"$T/fw1.out" 2>&1 &
	PIDS="$PIDS $!"
	ctd_daemon fw2 "$CTD_OURS" -C "$T/fw2.conf" >>"$T/fw2.out" 2>&1 &
	PIDS="$PIDS $!"
	sleep 0.3	# the scenario's fixed offset, not a wait for a state
	inject -n $REL_N -e $REL_E
	if ! wait_until 10 ctd_alive fw1 || ! wait_until 10 ctd_alive fw2; then
		fail "$N: daemons start" "$(tail -n2 "$T/fw1.log" "$T/fw2.log" 2>/dev/null | tr '\n' '|')"; topo_down; return
	fi
	nct=$(k_total fw1)
	wait_until 60 eval "ext_active_ge fw2 $nct"
	WHY="fw2 -e has $(ext_count fw2) of $nct conntracks; fw1 -i has $(int_count fw1)"
	check "$N: 10% loss, burst 0.3 s after start: every conntrack arrives (same tuples as fw1's kernel)" \
		eval '[ "$(ext_ct fw2)" = "$(k_ct fw1)" ]'
	wait_until 30 exp_is fw2 $REL_E
	WHY="fw2 -e expect has $(ext_exp_count fw2) of $REL_E"
	check "$N: ... and every expectation" eval '[ "$(ext_exp fw2)" = "$(k_exp fw1)" ]'
	note "$N: fw2 Packets lost $(net_field fw2 'Packets lost'), nft dropped $(dropped fw2) into fw2, $(dropped fw1) into fw1"
	topo_down
}

# ------------------------------------------------------ 3. large tables
big_conf() {	# room for 200k in the caches
	sed -i -e 's/HashLimit .*/HashLimit 524288/' "$T/$1.conf"
}
scenario_3() {
	local N="large" n=$REL_LARGE t0 t1 max
	max=$(cat /proc/sys/net/netfilter/nf_conntrack_max 2>/dev/null || echo 0)
	if [ "$max" -lt $((n + 1000)) ]; then
		skip "$N: $n conntracks" "nf_conntrack_max is $max"; return
	fi
	CONF_HOOK=big_conf start_pair large ftfw || return
	nsx fw1 sysctl -qw net.netfilter.nf_conntrack_max=262144 2>/dev/null
	inject -n $n -b 500
	WHY="fw1 internal cache has $(cache_active fw1 internal) of $n"
	if ! wait_until 60 eval "int_active_ge fw1 $n"; then
		fail "$N: fw1's internal cache takes in $n conntracks" "$WHY"; topo_down; return
	fi
	wait_until 60 eval "ext_active_ge fw2 $n"
	note "$N: events: fw2 external holds $(cache_active fw2 external) of $n"
	same_set "$N: fw1 -i equals its kernel ($n)" "int_ct fw1" "k_ct fw1"
	# LARGE_LOSS=P: -B and -n below run with P% loss both ways
	[ "${LARGE_LOSS:-0}" -gt 0 ] && lossy "$LARGE_LOSS"

	ctd fw2 -f external >/dev/null 2>&1
	WHY="fw2 external cache still has $(cache_active fw2 external)"
	check "$N: fw2 -f external empties fw2's external cache" \
		wait_until 10 eval '[ "$(cache_active fw2 external)" = 0 ] && [ "$(ext_count fw2)" = 0 ]'
	t0=$(date +%s%N)
	ctd fw1 -B >/dev/null 2>&1
	wait_until 60 eval "ext_active_ge fw2 $n"
	t1=$(date +%s%N)
	note "$N: -B of $n: fw2 complete after $(( (t1 - t0) / 1000000 )) ms"
	same_set "$N: after -B fw2 -e equals fw1 -i ($n tuples)" "ext_ct fw2" "int_ct fw1"

	ctd fw2 -f external >/dev/null 2>&1
	WHY="fw2 external cache still has $(cache_active fw2 external)"
	check "$N: fw2 -f external empties fw2's external cache" \
		wait_until 10 eval '[ "$(cache_active fw2 external)" = 0 ] && [ "$(ext_count fw2)" = 0 ]'
	t0=$(date +%s%N)
	ctd fw2 -n >/dev/null 2>&1
	wait_until 60 eval "ext_active_ge fw2 $n"
	t1=$(date +%s%N)
	note "$N: -n of $n: fw2 complete after $(( (t1 - t0) / 1000000 )) ms"
	same_set "$N: after -n fw2 -e equals fw1 -i ($n tuples)" "ext_ct fw2" "int_ct fw1"
	note "$N: fw1 $(ctd fw1 -s queue 2>/dev/null | grep -A3 rsqueue | tr '\n\t' '  ')"
	topo_down
}

# ------------------------------------------------------ 4. peer restart
scenario_4() {
	local N="restart" ip p n=$REL_RESTART_N e=$REL_RESTART_E
	start_pair restart-fw2 ftfw || return
	# a paced burst (~2 s) so the kill lands in its middle
	inject -n $n -e $e -r $((n / 2)) &
	ip=$!
	wait_until 10 eval "ext_active_ge fw2 $((n / 4))"
	for p in $(ctd_pids fw2); do kill -9 "$p"; done
	note "$N: fw2 SIGKILLed with $(k_total fw1) conntracks in fw1's kernel"
	wait_until 5 eval '[ -z "$(ctd_pids fw2)" ]'
	if ! restart_killed fw2; then fail "$N: fw2 restarts after SIGKILL (stale lock)" "$CTD_ERR"; topo_down; return; fi
	wait "$ip"
	wait_until 30 eval "int_active_ge fw1 $((n + e))"
	ctd fw2 -n >/dev/null 2>&1
	wait_until 30 eval "ext_active_ge fw2 $((n + e))"
	wait_until 10 eval '[ "$(ext_ct fw2)" = "$(int_ct fw1)" ]'
	same_set "$N: fw2 killed mid-burst, restarted, -n: fw2 -e equals fw1 -i" "ext_ct fw2" "int_ct fw1"
	if [ "$e" -gt 0 ]; then	# (REL_RESTART_E=0: conntracks only)
		wait_until 10 eval '[ "$(ext_exp fw2)" = "$(int_exp fw1)" ]'
		same_set "$N: ... expectations too" "ext_exp fw2" "int_exp fw1"
	fi
	topo_down

	start_pair restart-fw1 ftfw || return
	inject -n $n -e $e -r $((n / 2)) &
	ip=$!
	wait_until 10 eval "ext_active_ge fw2 $((n / 4))"
	for p in $(ctd_pids fw1); do kill -9 "$p"; done
	note "$N: fw1 SIGKILLed with $(k_total fw1) conntracks in its kernel, fw2 holding $(cache_active fw2 external)"
	wait_until 5 eval '[ -z "$(ctd_pids fw1)" ]'
	wait "$ip"	# the rest of the burst happens while fw1's daemon is down
	if ! restart_killed fw1; then fail "$N: fw1 restarts after SIGKILL (stale lock)" "$CTD_ERR"; topo_down; return; fi
	WHY="fw1 -i has $(cache_active fw1 internal), kernel $(k_total fw1)"
	check "$N: restarted fw1 refills its internal cache from the kernel" \
		wait_until 20 eval '[ "$(int_ct fw1)" = "$(k_ct fw1)" ]'
	ctd fw1 -B >/dev/null 2>&1
	wait_until 30 eval '[ "$(ext_ct fw2)" = "$(k_ct fw1)" ]'
	same_set "$N: fw1 killed mid-burst, restarted, -B: fw2 -e equals fw1's kernel" "ext_ct fw2" "k_ct fw1"
	if [ "$e" -gt 0 ]; then
		wait_until 10 eval '[ "$(ext_exp fw2)" = "$(k_exp fw1)" ]'
		same_set "$N: ... expectations too" "ext_exp fw2" "k_exp fw1"
	fi
	topo_down
}

# ------------------------------------------ 5. -B and -n, set equality
scenario_5() {
	local N="bulk-resync"
	start_pair bulk ftfw || return
	inject -n 3000 -e 100
	wait_until 20 eval "ext_active_ge fw2 3100"
	# fw2 loses its copy; some entries change on fw1 meanwhile
	ctd fw2 -f >/dev/null 2>&1	# no argument: expectation caches too
	wait_until 5 eval '[ "$(cache_active fw2 external)" = 0 ]'
	nsx fw1 "$INJ" create -p tcp -s 100.65.0.1 -d $DST -n 100 >/dev/null 2>&1
	nsx fw1 conntrack -D -s 100.64.0.5 >/dev/null 2>&1
	wait_until 10 eval '[ "$(int_ct fw1)" = "$(k_ct fw1)" ]'
	ctd fw2 -f >/dev/null 2>&1	# the events above reached fw2: start empty again (no argument: expectation caches too)
	WHY="fw2 -e: $(ext_count fw2), -e expect: $(ext_exp_count fw2)"
	check "$N: fw2 -f empties its external conntrack and expectation caches" \
		wait_until 5 eval '[ "$(ext_count fw2)" = 0 ] && [ "$(ext_exp_count fw2)" = 0 ]'
	ctd fw1 -B >/dev/null 2>&1
	wait_until 20 eval '[ "$(ext_ct fw2)" = "$(int_ct fw1)" ]'
	same_set "$N: -B: fw2 -e equals fw1 -i (conntracks)" "ext_ct fw2" "int_ct fw1"
	wait_until 10 eval '[ "$(ext_exp fw2)" = "$(int_exp fw1)" ]'
	same_set "$N: -B: fw2 -e expect equals fw1 -i expect" "ext_exp fw2" "int_exp fw1"
	ctd fw2 -f >/dev/null 2>&1	# no argument: expectation caches too
	wait_until 5 eval '[ "$(ext_count fw2)" = 0 ] && [ "$(ext_exp_count fw2)" = 0 ]'
	ctd fw2 -n >/dev/null 2>&1
	wait_until 20 eval '[ "$(ext_ct fw2)" = "$(int_ct fw1)" ]'
	same_set "$N: -n: fw2 -e equals fw1 -i (conntracks)" "ext_ct fw2" "int_ct fw1"
	wait_until 10 eval '[ "$(ext_exp fw2)" = "$(int_exp fw1)" ]'
	same_set "$N: -n: fw2 -e expect equals fw1 -i expect" "ext_exp fw2" "int_exp fw1"
	same_set "$N: and fw1 -i equals fw1's kernel" "int_ct fw1" "k_ct fw1"
	topo_down
}

# --------------------------------------------------- 6. link failover
FW1_S2=10.4.0.1 FW2_S2=10.4.0.2
two_channels() {	# sync0 becomes the Default UDP block, sync1 a second one
	local me peer
	if [ "$1" = fw1 ]; then me=$FW1_S2 peer=$FW2_S2; else me=$FW2_S2 peer=$FW1_S2; fi
	python3 - "$T/$1.conf" "$me" "$peer" <<-'EOF'
	import sys
	p, me, peer = sys.argv[1:4]
	s = open(p).read().replace("\tUDP {", "\tUDP Default {", 1)
	blk = ("UDP {\n\t\tIPv4_address %s\n\t\tIPv4_Destination_Address %s\n"
	       "\t\tPort 3781\n\t\tInterface sync1\n\t\tChecksum on\n\t}\n\t" % (me, peer))
	i = s.index("Options {")
	open(p, "w").write(s[:i] + blk + s[i:])
	EOF
}
scenario_6() {
	local N="link-failover" fw
	new_case "link-$RANDOM"
	pair_up || { fail "$N: namespaces"; return; }
	sync1_up
	for fw in fw1 fw2; do ctd_conf $fw ftfw udp on; two_channels $fw; done
	if ! ctd_start fw1 || ! ctd_start fw2; then fail "$N: daemons start with two channels" "$CTD_ERR"; topo_down; return; fi
	WHY="$(ctd fw1 -s link 2>&1 | grep device | tr '\n' '|')"
	check "$N: -s link shows the Default link sync0 ACTIVE first" \
		eval "ctd fw1 -s link 2>/dev/null | grep 'device=sync0 ' | grep -q 'role=ACTIVE'"
	inject -n 1000
	wait_until 10 eval "ext_active_ge fw2 1000"
	ip -n "$NS_FW1" link set sync0 down
	ip -n "$NS_FW2" link set sync0 down
	for fw in fw1 fw2; do
		WHY="$fw log: $(grep -i 'link' "$T/$fw.log" | tail -n2 | tr '\n' '|')"
		check "$N: $fw logs \"device \`sync1' becomes dedicated link\"" \
			wait_until 5 grep -q "device \`sync1' becomes dedicated link" "$T/$fw.log"
		WHY="$(ctd $fw -s link 2>&1 | grep device | tr '\n' '|')"
		check "$N: $fw's -s link shows sync1 ACTIVE" \
			eval "ctd $fw -s link 2>/dev/null | grep 'device=sync1 ' | grep -q 'role=ACTIVE'"
	done
	inject -n 5000 -e 100 -o 1000
	wait_until 20 eval "ext_active_ge fw2 6100"
	wait_until 10 eval '[ "$(ext_ct fw2)" = "$(k_ct fw1)" ]'
	same_set "$N: a burst of 5000 + 100 expectations after the switch arrives complete" "ext_ct fw2" "k_ct fw1"
	wait_until 10 eval '[ "$(ext_exp fw2)" = "$(k_exp fw1)" ]'
	same_set "$N: ... expectations too" "ext_exp fw2" "k_exp fw1"
	topo_down
}

# ------------------------------- 7. loss, our sender, Debian's receiver
# 1.4.7's receiver ACKs seqs it never got while our messages still carry
# HELLO; our sender re-sends its table when the handshake completes.
scenario_7() {
	if [ ! -x "$CTD_DEBIAN" ]; then skip "loss[udp ours->debian]" "$CTD_DEBIAN missing"; return; fi
	CTD_FW2=debian LOSS_TAG="ours->debian" loss_case udp
	CTD_FW2=${REL_FW2:-ours}
}

for s in $SCENARIOS; do
	t0=$(date +%s)
	"scenario_$s"
	note "scenario $s took $(( $(date +%s) - t0 )) s"
done
finish

#!/bin/bash
# shellcheck disable=SC2034,SC2046,SC2010 # globals read by lib.sh; lists split on purpose
# Two dedicated sync links (spec sync-protocol 9.5): when the current link
# goes down the daemons switch to the other one, log it, and sync goes on;
# a TCP channel reconnects after its link comes back.
# Pairs: CTD_FW1/CTD_FW2 as in t-failover.sh (default ours->ours,
# debian->ours, ours->debian).
set -u
. "$(dirname "$0")/lib.sh"
need_root t-channels
lib_init
if [ -n "$(printenv CTD_FW1)$(printenv CTD_FW2)" ]; then
	PAIRS="$CTD_FW1:$CTD_FW2"
else
	PAIRS="ours:ours debian:ours ours:debian"
fi
FW1_S2=10.4.0.1 FW2_S2=10.4.0.2

ext_count() { ctd "$1" -e 2>/dev/null | grep -c "dst=198.51.100.2 "; }
ext_is() { [ "$(ext_count "$1")" -eq "$2" ]; }
mk() {	# mk FW FIRST N: N udp conntracks on FW, source ports FIRST..FIRST+N-1
	local fw=$1 i
	for i in $(seq "$2" $(($2 + $3 - 1))); do
		nsx "$fw" conntrack -I -p udp -s 198.51.100.1 -d 198.51.100.2 --sport "$i" --dport 53 -t 600 >/dev/null 2>&1
	done
}

# second channel block, appended to the Sync section of FW's config
add_channel() {
	local fw=$1 chan=$2 me peer blk
	if [ "$fw" = fw1 ]; then me=$FW1_S2 peer=$FW2_S2; else me=$FW2_S2 peer=$FW1_S2; fi
	case $chan in
	udp) blk="UDP {
		IPv4_address $me
		IPv4_Destination_Address $peer
		Port 3781
		Interface sync1
	}";;
	mcast) blk="Multicast {
		IPv4_address 225.0.0.51
		Group 3781
		IPv4_interface $me
		Interface sync1
	}";;
	tcp) blk="TCP {
		IPv4_address $me
		IPv4_Destination_Address $peer
		Port 3781
		Interface sync1
	}";;
	esac
	python3 - "$T/$fw.conf" "$blk" <<-'EOF'
	import sys
	p, blk = sys.argv[1], sys.argv[2]
	s = open(p).read()
	i = s.index("Options {")
	open(p, "w").write(s[:i] + blk + "\n" + s[i:])
	EOF
}

run_pair() {
	local k1=$1 k2=$2 chan=$3 N
	N="channels[$k1->$k2 $chan]"
	CTD_FW1=$k1 CTD_FW2=$k2
	new_case "$k1-$k2-$chan"
	pair_up || { fail "$N: namespaces"; return; }
	sync1_up
	for fw in fw1 fw2; do
		ctd_conf $fw ftfw "$chan" on
		add_channel $fw "$chan"
	done
	if ! ctd_start fw1 || ! ctd_start fw2; then fail "$N: daemons start with two channels" "$CTD_ERR"; topo_down; return; fi
	mk fw1 1000 20
	WHY="fw2 -e has $(ext_count fw2) of 20"
	check "$N: sync over the first link" wait_until 10 ext_is fw2 20
	ip -n "$NS_FW1" link set sync0 down
	WHY="fw1 log: $(grep -i 'link' "$T/fw1.log" | tail -n2 | tr '\n' '|')"
	check "$N: fw1 logs \"device \`sync1' becomes dedicated link\" (1.4.7 text)" \
		wait_until 5 grep -q "device \`sync1' becomes dedicated link" "$T/fw1.log"
	mk fw1 2000 20
	WHY="fw2 -e has $(ext_count fw2) of 40"
	check "$N: sync goes on over the second link" wait_until 15 ext_is fw2 40
	WHY="$(ctd fw1 -s link 2>&1 | grep -E 'device|status' | tr '\n' '|')"
	check "$N: -s link shows sync1 active on fw1" \
		eval "ctd fw1 -s link 2>/dev/null | grep -E 'device=sync1 ' | grep -q 'role=ACTIVE'"
	# fw2 answers (ACKs) on the link it last received from
	nsx fw2 conntrack -I -p udp -s 198.51.100.9 -d 198.51.100.2 --sport 9 --dport 53 -t 600 >/dev/null 2>&1
	WHY="fw1 -e: $(ctd fw1 -e | grep -c 198.51.100.9)"
	check "$N: the peer follows (fw2 -> fw1 over sync1)" wait_until 10 ctd_has fw1 "src=198.51.100.9 " -e
	topo_down
}

for pair in $PAIRS; do
	for chan in ${CHANNELS:-udp mcast}; do
		run_pair "${pair%%:*}" "${pair#*:}" "$chan"
	done
done
finish

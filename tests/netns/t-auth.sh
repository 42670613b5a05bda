#!/bin/bash
# Authenticated sync end to end (doc/auth.md): fw1 and fw2 with the same
# AuthKeyFile sync both ways over UDP, multicast and TCP; every datagram
# on the link carries the 48-byte trailer; -s network shows the
# authentication block.  Without AuthKeyFile nothing changes on the wire
# (no trailer, no extra -s lines).  A Debian 1.4.7 peer (no authentication)
# is refused by ours, which logs why.
set -u
. "$(dirname "$0")/lib.sh"
need_root t-auth
lib_init

REAL=198.51.100

cat > "$T_BASE/sniff.py" <<'EOF'
# IFACE PORT COUNT SECS: print "trailer" or "plain" for each UDP datagram
# to PORT seen on IFACE (ETH_P_ALL: also sees what veth hands over).
import select, socket, struct, sys, time
ifc, port, count, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind((ifc, 3))
end, n = time.time() + secs, 0
while n < count and time.time() < end:
    if not select.select([s], [], [], 0.2)[0]:
        continue
    fr, addr = s.recvfrom(65535)
    if addr[2] == socket.PACKET_OUTGOING or fr[12:14] != b'\x08\x00' or fr[23] != 17:
        continue
    ihl = (fr[14] & 15) * 4
    if struct.unpack_from('>H', fr, 14 + ihl + 2)[0] != port:
        continue
    pl = fr[14 + ihl + 8:]
    print('trailer' if len(pl) >= 56 and pl[-48:-44] == b'CTA1' else 'plain', len(pl), flush=True)
    n += 1
EOF

key_file() { ( umask 077; printf '1 %s\n' "$2" > "$1" ); }
add_auth() { sed -i "s|^\([[:space:]]*\)ExpectationSync|\1AuthKeyFile $2\n\1ExpectationSync|" "$T/$1.conf"; }
mk_ct() { nsx "$1" conntrack -I -p udp -s $REAL.$2 -d $REAL.200 --sport 1000 --dport 53 -t 900 >/dev/null 2>&1; }
ext_has() { ctd "$1" -e 2>/dev/null | grep -q "src=$REAL.$2 "; }
accepted() { local v; v=$(ctd fw2 -s network 2>/dev/null | grep -F 'Accepted:' | awk '{print $NF}'); [ -n "$v" ] && [ "$v" -gt 0 ]; }
no_auth_block() { ctd fw2 -s network >"$T/net.out" 2>&1 && ! grep -q authentication "$T/net.out"; }
ext_empty() { ctd "$1" -e >"$T/ext.out" 2>&1 && ! grep -q src= "$T/ext.out"; }
sniff() { nsx fw2 python3 "$T_BASE/sniff.py" sync0 $SYNC_PORT "$1" 10 >"$T/sniff.out" 2>&1; }

for chan in udp mcast tcp; do
	N="auth[$chan]"
	new_case "$chan"
	pair_up || { fail "$N: topology" "pair_up failed"; continue; }
	key_file "$T/sync.key" 5f1e2d3c4b5a69788d7c6b5a49382716f5e4d3c2b1a099887766554433221100
	ctd_conf fw1 ftfw $chan off; add_auth fw1 "$T/sync.key"
	ctd_conf fw2 ftfw $chan off; add_auth fw2 "$T/sync.key"
	if ! ctd_start fw1 || ! ctd_start fw2; then
		fail "$N: daemons start" "$CTD_ERR"; topo_down; continue
	fi
	[ $chan != tcp ] && { sniff 3 & SNIFF=$!; PIDS="$PIDS $SNIFF"; }
	mk_ct fw1 1
	mk_ct fw2 2
	WHY="fw2 -e: $(ctd fw2 -e 2>&1 | head -n2)"
	check "$N: an entry created on fw1 reaches fw2" wait_until 10 ext_has fw2 1
	WHY="fw1 -e: $(ctd fw1 -e 2>&1 | head -n2)"
	check "$N: an entry created on fw2 reaches fw1" wait_until 10 ext_has fw1 2
	WHY="-s network: $(ctd fw2 -s network 2>&1 | grep -A3 authentication | tr '\n' ' ')"
	check "$N: -s network counts accepted authenticated data" accepted
	if [ $chan != tcp ]; then
		wait_until 12 bash -c "! kill -0 $SNIFF"
		WHY="datagrams seen: $(tr '\n' ' ' < "$T/sniff.out")"
		check "$N: every datagram on the link carries the trailer" \
			bash -c "[ -s '$T/sniff.out' ] && ! grep -q plain '$T/sniff.out'"
	fi
	WHY="fw2.log: $(grep -i 'refused' "$T/fw2.log" | head -n2 | tr '\n' ' ')"
	check "$N: nothing refused between the real peers" bash -c "! grep -q 'refused data' '$T/fw2.log' '$T/fw1.log'"
	topo_down
done

# without AuthKeyFile: the 1.4.x wire and output
N="auth[off]"
new_case off
if pair_up; then
	ctd_conf fw1 ftfw udp off
	ctd_conf fw2 ftfw udp off
	if ctd_start fw1 && ctd_start fw2; then
		sniff 3 & SNIFF=$!; PIDS="$PIDS $SNIFF"
		mk_ct fw1 3
		check "$N: plain sync works" wait_until 10 ext_has fw2 3
		wait_until 12 bash -c "! kill -0 $SNIFF"
		WHY="datagrams seen: $(tr '\n' ' ' < "$T/sniff.out")"
		check "$N: no trailer on the wire" bash -c "[ -s '$T/sniff.out' ] && ! grep -q trailer '$T/sniff.out'"
		WHY="$(ctd fw2 -s network 2>&1 | grep -A2 authentication)"
		check "$N: -s network prints no authentication block" no_auth_block
	else
		fail "$N: daemons start" "$CTD_ERR"
	fi
	topo_down
fi

# Debian's 1.4.7 on fw1 (cannot authenticate) against ours with a key
N="auth[debian->ours]"
if [ -x "$CTD_DEBIAN" ]; then
	new_case debian
	if pair_up; then
		key_file "$T/sync.key" 5f1e2d3c4b5a69788d7c6b5a49382716f5e4d3c2b1a099887766554433221100
		ctd_conf fw1 ftfw udp off
		ctd_conf fw2 ftfw udp off; add_auth fw2 "$T/sync.key"
		if ctd_start fw1 "$CTD_DEBIAN" && ctd_start fw2; then
			mk_ct fw1 4
			WHY="fw2.log: $(tail -n2 "$T/fw2.log" | tr '\n' ' ')"
			check "$N: ours logs the unauthenticated peer and why" \
				wait_until 10 bash -c "grep -F 'refused data from $FW1_S:' '$T/fw2.log' | grep -qF 'no authentication trailer'"
			WHY="fw2 -e: $(ctd fw2 -e 2>&1 | head -n2)"
			check "$N: nothing from the unauthenticated peer is accepted" ext_empty fw2
		else
			fail "$N: daemons start" "$CTD_ERR"
		fi
		topo_down
	fi
else
	skip "$N" "$CTD_DEBIAN not installed"
fi
finish

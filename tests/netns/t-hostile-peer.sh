#!/bin/bash
# A hostile host on the sync link.  fw1 and fw2 sync over UDP (FT-FW); the
# sync link is a bridge in a third namespace ("evil", lib.sh's client
# namespace) which sniffs fw1's datagrams and sends to fw2's sync port:
# truncated, zero and oversized lengths, wrong version, bad type, malformed
# payload, bogus NACK/ALIVE sequence numbers (out of order), random bytes,
# 64 KiB datagrams, fw1's own captured datagrams replayed and reordered, and
# a bounded flood.  fw2 must stay up, keep syncing with fw1 (entries created
# on fw1 during and after the attack reach it), commit only real entries,
# and count each rejection kind in -s network.
# Then the same with AuthKeyFile on both firewalls (doc/auth.md): forged and
# replayed datagrams are refused and counted; with a wrong key on fw2
# nothing is accepted and its log says why.
set -u
. "$(dirname "$0")/lib.sh"
need_root t-hostile-peer
lib_init

NS_EVIL=$NS_CLIENT              # cleaned up by lib.sh's topo_down
EVIL_IP=10.3.0.66
REAL=198.51.100                 # every real entry: $REAL.x -> $REAL.200
POISON=192.0.2                  # what an attacker tries to plant

# fw1 -- p-fw1 [br0 in evil, 10.3.0.66] p-fw2 -- fw2
hostile_topo_up() {
	local fw ns
	for ns in "$NS_FW1" "$NS_FW2" "$NS_EVIL"; do
		ip netns add "$ns" || return 1
		ip -n "$ns" link set lo up
	done
	ip -n "$NS_EVIL" link add br0 type bridge forward_delay 0 stp_state 0
	for fw in fw1 fw2; do
		ns=$(ns_of $fw)
		ip -n "$NS_EVIL" link add "p-$fw" type veth peer name sync0 netns "$ns"
		ip -n "$NS_EVIL" link set "p-$fw" master br0 up
		ip -n "$ns" link set sync0 up
		ip -n "$ns" route add 224.0.0.0/4 dev sync0
	done
	ip -n "$NS_FW1" addr add $FW1_S/24 dev sync0
	ip -n "$NS_FW2" addr add $FW2_S/24 dev sync0
	ip -n "$NS_EVIL" addr add $EVIL_IP/24 dev br0
	ip -n "$NS_EVIL" link set br0 up
	TOPO_IS_UP=1
	wait_until 10 nsx "$NS_EVIL" ping -c1 -W1 $FW2_S
}

cat > "$T_BASE/evil.py" <<'EOF'
import os, random, select, socket, struct, sys, time

def attr(t, p):
    l = 4 + len(p)
    return struct.pack('>HH', l, t) + p + b'\0' * ((-l) % 4)

def msg(typ, flags, seq, body=b'', ver=1, length=None):
    n = 8 + len(body) if length is None else length
    return struct.pack('>BBHI', (ver << 4) | typ, flags, n & 0xffff, seq & 0xffffffff) + body

def ct(src, dst, sport=1000, dport=53):
    return (attr(0, socket.inet_aton(src) + socket.inet_aton(dst)) +
            attr(5, struct.pack('>I', 8)) + attr(2, b'\x11') +
            attr(3, struct.pack('>HH', sport, dport)) + attr(6, struct.pack('>I', 300)))

def frames(path):
    d = open(path, 'rb').read() if os.path.exists(path) else b''
    out, off = [], 0
    while off + 2 <= len(d):
        n, = struct.unpack_from('>H', d, off)
        out.append(d[off + 2:off + 2 + n])
        off += 2 + n
    return out

cmd, args = sys.argv[1], sys.argv[2:]
if cmd == 'sniff':      # IFACE SRC PORT OUT MAX SECS: frames from SRC to PORT
    ifc, src, port, out, mx, secs = args[0], args[1], int(args[2]), args[3], int(args[4]), float(args[5])
    # ETH_P_ALL: on a bridge port only the "all" taps see frames (the
    # bridge takes them before per-protocol handlers); bind with 0 sees none
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
    s.bind((ifc, 3))
    end, n = time.time() + secs, 0
    with open(out, 'ab', buffering=0) as f:
        while n < mx and time.time() < end:
            r, _, _ = select.select([s], [], [], 0.2)
            if not r:
                continue
            fr, addr = s.recvfrom(65535)
            if addr[2] == socket.PACKET_OUTGOING or len(fr) < 42:
                continue
            ihl = (fr[14] & 15) * 4
            if fr[12:14] != b'\x08\x00' or fr[23] != 17 or socket.inet_ntoa(fr[26:30]) != src:
                continue
            if struct.unpack_from('>H', fr, 14 + ihl + 2)[0] != port:
                continue
            f.write(struct.pack('>H', len(fr)) + fr)
            n += 1
    sys.exit(0)

if cmd == 'replay':     # IFACE FILE: send the captured frames, in order then reversed
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((args[0], 0))
    fs = frames(args[1])
    for fr in fs + fs[::-1]:
        # veth leaves the UDP checksum to offload: what we captured is
        # unfinished. 0 = "no checksum" for IPv4; the payload is untouched.
        ihl = (fr[14] & 15) * 4
        fr = fr[:14 + ihl + 6] + b'\0\0' + fr[14 + ihl + 8:]
        s.send(fr)
    print(len(fs))
    sys.exit(0)

dst, port = args[0], int(args[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
def send(b):
    try:
        s.sendto(b, (dst, port))
    except OSError:         # ENOBUFS/EMSGSIZE under the flood: keep going
        pass
seq = random.randrange(1 << 32)
poison = args[2] if len(args) > 2 else '192.0.2'

if cmd == 'junk':       # every malformed kind, several times each
    for i in range(5):
        send(b'\x10\x00\x00')                                   # truncated header
        send(msg(10, 0x10, seq) + b'\x1a\x00\x00')              # trailing junk: truncated
        send(msg(0, 0, seq, length=0))                          # length 0: bad size
        send(msg(0, 0, seq, b'\0' * 8, length=4000))            # longer than the datagram
        send(msg(0, 0, seq, ct(poison + '.1', poison + '.2'), ver=2))   # wrong version
        send(msg(7, 0, seq + i))                                # type 7: malformed header
        send(msg(0, 0, seq + i, struct.pack('>HH', 3, 0) + b'\0' * 4))  # attribute len 3
        send(msg(0, 0, seq + i, attr(0, b'\x0a\x00\x00')))      # IPv4 attribute too short
        send(msg(0, 0, seq + i, attr(2, b'\x11') + attr(99, b'abcd')))  # unknown attribute
        send(msg(10, 0x04, seq, struct.pack('>II', 0xfffffff0, 5)))     # NACK, to < from
        send(msg(10, 0x08, seq + 1000000, struct.pack('>II', 7, 3)))    # ACK, out of order
        send(msg(10, 0x10, seq - 1000000))                      # ALIVE from the past
        send(msg(10, 0x10, seq + 3000000))                      # ALIVE from the future
        send(os.urandom(random.randrange(1, 1400)))
        send(b'\x10' + os.urandom(random.randrange(8, 1400)))   # version 1, random rest
    for i in range(3):
        send(os.urandom(65000))                                 # oversized (fragmented)
    sys.exit(0)

if cmd == 'forge':      # well-formed CT NEW for the poison address: auth must stop it
    for i in range(5):
        send(msg(0, 0, seq + i, ct('%s.%d' % (poison, i + 1), poison + '.200')))
        b = msg(0, 0, seq + 10 + i, ct('%s.%d' % (poison, i + 1), poison + '.200'))
        send(b + struct.pack('>III', 0x43544131, 1, 0) + struct.pack('>I', 1) + os.urandom(32))  # fake trailer
        send(b + struct.pack('>III', 0x43544131, 77, 0) + struct.pack('>I', 1) + os.urandom(32)) # unknown key id
    sys.exit(0)

if cmd == 'flood':      # COUNT SECS: random datagrams, bounded in number and time
    count, secs = int(args[2]), float(args[3])
    end, n = time.time() + secs, 0
    while n < count and time.time() < end:
        r = random.random()
        if r < 0.4:
            send(os.urandom(random.randrange(1, 1472)))
        elif r < 0.7:
            send(msg(random.randrange(16), random.randrange(256), random.randrange(1 << 32),
                     os.urandom(random.randrange(0, 200)), ver=random.choice((0, 1, 2, 15))))
        else:
            send(msg(0, 0, random.randrange(1 << 32), struct.pack('>HH', 2, 0) + os.urandom(random.randrange(4, 100))))
        n += 1
    print(n)
    sys.exit(0)
sys.exit('unknown command ' + cmd)
EOF

evil() { nsx "$NS_EVIL" python3 "$T_BASE/evil.py" "$@"; }
real_ct() { nsx fw1 conntrack -I -p udp -s $REAL.$1 -d $REAL.200 --sport 1000 --dport 53 -t 900 >/dev/null 2>&1; }
ext_has() { ctd fw2 -e 2>/dev/null | grep -q "src=$REAL.$1 "; }
netstat_of() { ctd fw2 -s network 2>/dev/null | grep -F "$1" | head -n1 | awk '{print $NF}'; }
# the count of a -s network line is positive
counted() { local v; v=$(netstat_of "$1"); [ -n "$v" ] && [ "$v" -gt 0 ]; }
pid_of() { ctd_pids "$1" | head -n1; }
log_has() { grep -qF -- "$2" "$T/$1.log"; }

# kernel entries on fw2 other than the sync traffic itself
fw2_kernel() { nsx fw2 conntrack -L 2>/dev/null | grep -v "src=10\.3\.0\." ; }

same_pids() { [ "$(pid_of fw2)" = "$P2" ] && [ "$(pid_of fw1)" = "$P1" ] && ctd_alive fw2 && ctd_alive fw1; }
ext_23() { ext_has 2 && ext_has 3; }
ext_count() { ctd fw2 -e 2>/dev/null | grep -c "src=${1:-}"; }
ext_only_real() { [ "$(ext_count)" -eq 3 ] && [ "$(ext_count "$REAL\.")" -eq 3 ]; }
kernel_only_real() {
	[ "$(fw2_kernel | grep -c src=)" -eq 3 ] &&
	[ "$(fw2_kernel | grep -c "src=$REAL\..* dst=$REAL\.200 ")" -eq 3 ]
}
no_poison_ext() { [ "$(ext_count "$POISON\.")" -eq 0 ]; }
log_refused() {  # PEER PATTERN: a refusal line for PEER matching PATTERN
	grep -F "refused data from $1:" "$T/fw2.log" | grep -qE "$2"
}
replays_counted() { [ $(( $(netstat_of 'Replayed:') + $(netstat_of 'Older than window:') )) -gt 0 ]; }

start_sniffer() {
	rm -f "$T/cap.bin"
	nsx "$NS_EVIL" python3 "$T_BASE/evil.py" sniff p-fw1 $FW1_S $SYNC_PORT "$T/cap.bin" 40 20 &
	PIDS="$PIDS $!"
}

key_file() {    # PATH HEX
	( umask 077; printf '# sync key\n1 %s\n' "$2" > "$1" )
}

add_auth() {    # FW KEYFILE: AuthKeyFile in the Sync Options block
	sed -i "s|^\([[:space:]]*\)ExpectationSync|\1AuthKeyFile $2\n\1ExpectationSync|" "$T/$1.conf"
}

setup_pair() {  # NAME [auth]
	new_case "$1"
	hostile_topo_up || { fail "$1: topology" "namespaces/bridge setup failed"; return 1; }
	ctd_conf fw1 ftfw udp off
	ctd_conf fw2 ftfw udp off
	if [ "${2:-}" = auth ]; then
		key_file "$T/sync.key" 8d7c6b5a49382716f5e4d3c2b1a0998877665544332211000f1e2d3c4b5a6978
		add_auth fw1 "$T/sync.key"
		add_auth fw2 "$T/sync.key"
	fi
	if ! ctd_start fw1 || ! ctd_start fw2; then
		fail "$1: daemons start" "$CTD_ERR"; topo_down; return 1
	fi
	start_sniffer
	real_ct 1
	if ! wait_until 10 ext_has 1; then
		fail "$1: first real entry reaches fw2 before the attack" "fw2 -e: $(ctd fw2 -e 2>&1 | head -n3)"
		topo_down; return 1
	fi
	# fw1 sends ALIVEs and the entry: let the sniffer hold a few datagrams
	wait_until 10 test "$(stat -c %s "$T/cap.bin" 2>/dev/null || echo 0)" -gt 300
	return 0
}

# ---------------------------------------------------------------- plain
N=hostile-peer
if setup_pair plain; then
	P1=$(pid_of fw1) P2=$(pid_of fw2)
	evil junk $FW2_S $SYNC_PORT $POISON
	replayed=$(evil replay p-fw2 "$T/cap.bin")
	evil flood $FW2_S $SYNC_PORT 20000 10 >"$T/flood.out" &
	FLOOD=$!; PIDS="$PIDS $FLOOD"
	real_ct 2           # during the flood
	wait_until 20 bash -c "! kill -0 $FLOOD"
	evil junk $FW2_S $SYNC_PORT $POISON
	real_ct 3           # after the attack
	note "replayed $replayed captured datagrams, flood sent $(cat "$T/flood.out" 2>/dev/null) datagrams"

	WHY="fw2 pid $P2 -> $(pid_of fw2), fw1 $P1 -> $(pid_of fw1)"
	check "$N: both daemons survive (same pids) and answer" same_pids
	WHY="fw2 -e: $(ctd fw2 -e 2>/dev/null | grep -c "src=$REAL\.") real entries"
	check "$N: entries created on fw1 during and after the attack reach fw2" \
		wait_until 15 ext_23
	for kind in "Wrong protocol version" "Malformed header" "Malformed payload" \
		    "Truncated message" "Bad message size"; do
		WHY="-s network: $(ctd fw2 -s network 2>&1 | grep -F "$kind")"
		check "$N: -s network counts '$kind'" counted "$kind"
	done
	WHY="fw2 -e: $(ctd fw2 -e 2>/dev/null | grep -v "src=$REAL\." | head -n2)"
	check "$N: the external cache holds only real entries" ext_only_real
	ctd fw2 -c >>"$T/fw2.client" 2>&1
	WHY="fw2 kernel after -c: $(fw2_kernel | grep -v "src=$REAL\." | head -n2)"
	check "$N: -c commits exactly the 3 real entries, nothing corrupt" \
		wait_until 5 kernel_only_real
	topo_down
fi

# ---------------------------------------------------------------- authenticated
N=hostile-peer-auth
if setup_pair auth auth; then
	P2=$(pid_of fw2)
	evil forge $FW2_S $SYNC_PORT $POISON
	evil junk $FW2_S $SYNC_PORT $POISON
	replayed=$(evil replay p-fw2 "$T/cap.bin")
	evil flood $FW2_S $SYNC_PORT 20000 10 >"$T/flood.out" &
	FLOOD=$!; PIDS="$PIDS $FLOOD"
	real_ct 2
	wait_until 20 bash -c "! kill -0 $FLOOD"
	real_ct 3
	note "replayed $replayed captured authenticated datagrams (twice, second time reversed)"

	WHY="fw2 pid $P2 -> $(pid_of fw2)"
	check "$N: fw2 survives (same pid)" test "$(pid_of fw2)" = "$P2"
	check "$N: real entries still reach fw2 during and after the attack" \
		wait_until 15 ext_23
	WHY="fw2 -e: $(ctd fw2 -e 2>/dev/null | grep "$POISON" | head -n2)"
	check "$N: no forged entry in fw2's external cache" no_poison_ext
	ctd fw2 -c >>"$T/fw2.client" 2>&1
	WHY="fw2 kernel: $(fw2_kernel | grep "$POISON" | head -n2)"
	check "$N: -c commits only the real entries, nothing forged" \
		wait_until 5 kernel_only_real
	WHY="fw2.log: $(grep -F 'sync authentication' "$T/fw2.log" | head -n3 | tr '\n' ' ')"
	check "$N: the log names the intruder and why" \
		log_refused $EVIL_IP 'no authentication trailer|bad HMAC|unknown key id'
	WHY="fw2.log: $(grep -F "refused data from $FW1_S" "$T/fw2.log" | head -n3 | tr '\n' ' ')"
	check "$N: replayed datagrams of fw1 are refused as replays" \
		log_refused $FW1_S 'replayed datagram|older than the replay window'
	WHY="-s network has no authentication block (stats.c must print chanset_print_auth())"
	if ctd_has fw2 "authentication statistics:" -s network; then
		for kind in "No trailer:" "Bad MAC:" "Unknown key id:"; do
			WHY="-s network: $(ctd fw2 -s network 2>&1 | grep -F "$kind")"
			check "$N: -s network counts '$kind'" counted "$kind"
		done
		WHY="-s network: $(ctd fw2 -s network 2>&1 | grep -E 'Replayed|Older')"
		check "$N: -s network counts the replays" replays_counted
	else
		fail "$N: -s network counts each refusal kind" "$WHY"
	fi

	# wrong key on fw2: nothing is accepted, and the log says why
	ctd_stop fw2
	key_file "$T/wrong.key" 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff
	sed -i "s|AuthKeyFile .*|AuthKeyFile $T/wrong.key|" "$T/fw2.conf"
	: > "$T/fw2.log"
	if ctd_start fw2; then
		real_ct 4
		WHY="fw2.log: $(tail -n3 "$T/fw2.log" | tr '\n' ' ')"
		check "$N: wrong key: fw2's log says bad HMAC from fw1" \
			wait_until 10 log_refused $FW1_S 'bad HMAC \(wrong key or altered datagram\)'
		WHY="fw2 -e: $(ctd fw2 -e 2>/dev/null | head -n2)"
		check "$N: wrong key: nothing is accepted (fw2's external cache stays empty)" \
			test "$(ext_count)" -eq 0
	else
		fail "$N: wrong key: fw2 restarts" "$CTD_ERR"
	fi

	# a key file others can read is refused, naming it
	ctd_stop fw2
	chmod 640 "$T/wrong.key"
	if ctd_start fw2; then
		fail "$N: a group-readable key file is refused" "fw2 started"
	else
		WHY="fw2 said: $(tail -n2 "$T/fw2.out" "$T/fw2.log" 2>/dev/null | tr '\n' ' ')"
		check "$N: a group-readable key file is refused, naming it" \
			bash -c "cat '$T/fw2.out' '$T/fw2.log' 2>/dev/null | grep -qF 'AuthKeyFile $T/wrong.key: group or other may access it'"
	fi
	topo_down
fi
finish

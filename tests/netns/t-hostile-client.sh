#!/bin/bash
# Hostile local clients on the control socket.  fw1 (20000 conntracks in its
# internal cache) syncs with fw2 while clients connect and send nothing, send
# half a request or a megabyte of garbage, ask for -i and hang up after the
# first bytes or never read, and open hundreds of connections at once.  fw1
# must keep serving well-behaved clients (-s answered within a deadline, a
# full -i dump complete) and keep syncing (a new entry reaches fw2).
# Then the socket itself: mode 0600 by default, UNIX { Permissions 0660 }
# changes it, and a symlink planted at the path is never followed.
set -u
. "$(dirname "$0")/lib.sh"
need_root t-hostile-client
lib_init

NENT=20000
SRC=100.64.0.1 DST=172.16.0.1       # inject's entries: $SRC + i -> $DST
INJ=$T_BASE/inject

cat > "$T_BASE/client.py" <<'EOF'
import os, socket, struct, sys, time

path, mode, n, hold = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
REQ_DUMP_INTERNAL = 16
socks, refused = [], 0

def conn():
    global refused
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
    except OSError:
        refused += 1
        return None
    socks.append(s)
    return s

for i in range(n):
    s = conn()
    if s is None:
        continue
    try:
        if mode == 'partial':       # half of the 4-byte request
            s.send(b'\x1e\x00')
        elif mode == 'huge':        # a megabyte where 4 bytes are expected
            s.setblocking(False)
            try:
                s.send(os.urandom(1 << 20))
            except OSError:
                pass
        elif mode == 'hangup':      # -i, read the first bytes, disconnect
            s.send(struct.pack('=i', REQ_DUMP_INTERNAL))
            s.recv(4096)
            s.close()
            socks.pop()
        elif mode == 'noread':      # -i, then never read the reply
            s.send(struct.pack('=i', REQ_DUMP_INTERNAL))
        elif mode == 'unknown':     # a request code nobody knows
            s.send(struct.pack('=i', 0x7fffffff))
    except OSError:
        pass
print('%d connected, %d refused' % (len(socks), refused), flush=True)
time.sleep(hold)                    # keep the connections open
EOF

hostile() {     # MODE COUNT HOLD_SECONDS: in the background
	python3 "$T_BASE/client.py" "$T/fw1.ctl" "$@" >>"$T/hostile.out" 2>&1 &
	PIDS="$PIDS $!"
}
pid_of() { ctd_pids "$1" | head -n1; }
int_count() { ctd fw1 -i 2>/dev/null | grep -c "dst=$DST "; }
int_is() { [ "$(int_count)" -eq "$1" ]; }
stats_fast() { nsx fw1 timeout 2 "$(ctd_bin_for fw1)" -C "$T/fw1.conf" -s 2>/dev/null | grep -q "cache internal"; }
ext_has() { ctd fw2 -e 2>/dev/null | grep -q "src=$1 "; }
sock_mode() { stat -c %a "$T/fw1.ctl" 2>/dev/null; }

N=hostile-client
new_case clients
if ! cc -O2 -o "$INJ" "$TOP_DIR/bench/inject.c" $(pkg-config --cflags --libs libnetfilter_conntrack libmnl) 2>"$T_BASE/inject.err"; then
	skip "$N" "bench/inject.c does not build: $(head -n1 "$T_BASE/inject.err")"
	finish; exit
fi
pair_up || { fail "$N: topology" "pair_up failed"; finish; exit; }
ctd_conf fw1 ftfw udp off
ctd_conf fw2 ftfw udp off
if ! ctd_start fw1 || ! ctd_start fw2; then
	fail "$N: daemons start" "$CTD_ERR"; finish; exit
fi
P1=$(pid_of fw1)
check "$N: control socket created with mode 0600 by default" test "$(sock_mode)" = 600

nsx fw1 "$INJ" create -n $NENT -p tcp -s $SRC -d $DST -b 250 >/dev/null 2>"$T/inject.err"
WHY="fw1 -i has $(int_count) of $NENT"
if ! wait_until 30 int_is $NENT; then
	fail "$N: $NENT entries in fw1's internal cache" "$WHY"
fi

# the attack: everything held open for 8 s
hostile idle 40 8
hostile partial 20 8
hostile huge 5 8
hostile noread 5 8
hostile unknown 10 8
hostile hangup 30 0
hostile idle 300 8

WHY="-s did not answer within 2 s, repeatedly for 10 s"
check "$N: -s answered within 2 s during the attack" wait_until 10 stats_fast
nsx fw1 conntrack -I -p udp -s 198.51.100.7 -d 198.51.100.8 --sport 1 --dport 2 -t 600 >/dev/null 2>&1
WHY="fw2 -e: $(ctd fw2 -e 2>/dev/null | grep -c src=) entries"
check "$N: a new entry on fw1 still reaches fw2 during the attack" wait_until 15 ext_has 198.51.100.7
# a full backlog makes a client's connect() fail at once: retry, with a deadline
full_dump() {
	nsx fw1 timeout 20 "$(ctd_bin_for fw1)" -C "$T/fw1.conf" -i >"$T/dump.out" 2>&1
	WHY="got $(grep -c "dst=$DST " "$T/dump.out") of $NENT lines: $(grep -v "dst=$DST " "$T/dump.out" | head -n2)"
	[ "$(grep -c "dst=$DST " "$T/dump.out")" -eq $NENT ]
}
check "$N: a complete -i dump of $NENT entries for a well-behaved client" wait_until 30 full_dump

# after the attack: the held connections are gone, the daemon is the same
for p in $PIDS; do wait_until 15 bash -c "! kill -0 $p"; done
note "hostile clients: $(tr '\n' ';' < "$T/hostile.out")"
WHY="pid $P1 -> $(pid_of fw1)"
check "$N: fw1 survives (same pid) and answers -s" \
	bash -c "[ '$(pid_of fw1)' = '$P1' ] && ip netns exec $NS_FW1 timeout 5 $(ctd_bin_for fw1) -C $T/fw1.conf -s >/dev/null"
nsx fw1 conntrack -I -p udp -s 198.51.100.9 -d 198.51.100.8 --sport 1 --dport 2 -t 600 >/dev/null 2>&1
check "$N: sync goes on after the attack" wait_until 15 ext_has 198.51.100.9
WHY="$(grep -ciE 'ERROR|segfault' "$T/fw1.log") error lines: $(grep -iE 'ERROR' "$T/fw1.log" | head -n2 | tr '\n' ' ')"
check "$N: no error logged by fw1" bash -c "! grep -q '\[ERROR\]' '$T/fw1.log'"

# ------------------------------------------------------------ socket mode
N=ctl-socket
ctd_stop fw1
sed -i "s|^\([[:space:]]*\)Path $T/fw1.ctl|&\n\1Permissions 0660|" "$T/fw1.conf"
if ctd_start fw1; then
	WHY="mode $(sock_mode)"
	check "$N: UNIX { Permissions 0660 } gives mode 0660" test "$(sock_mode)" = 660
else
	fail "$N: start with Permissions 0660" "$CTD_ERR"
fi
ctd_stop fw1

# a symlink planted at the socket path, pointing to a file we care about
echo precious > "$T/target"
chmod 644 "$T/target"
rm -f "$T/fw1.ctl"
ln -s "$T/target" "$T/fw1.ctl"
before=$(stat -c '%i %a %s %Y' "$T/target")
if ctd_start fw1; then
	started=1
else
	started=0
fi
after=$(stat -c '%i %a %s %Y' "$T/target" 2>/dev/null)
WHY="target before '$before' after '$after', content '$(cat "$T/target" 2>/dev/null)'"
check "$N: a symlink at the socket path: its target is untouched" \
	bash -c "[ '$before' = '$after' ] && [ -f '$T/target' ] && [ \"\$(cat '$T/target')\" = precious ]"
if [ $started = 1 ]; then
	WHY="$T/fw1.ctl is $(stat -c %F "$T/fw1.ctl")"
	check "$N: the daemon replaced the link by its socket" test -S "$T/fw1.ctl" -a ! -L "$T/fw1.ctl"
	ctd_stop fw1
else
	WHY="log: $(tail -n3 "$T/fw1.log" "$T/fw1.out" 2>/dev/null | tr '\n' ' ')"
	check "$N: the daemon refuses the symlink and says so" \
		bash -c "cat '$T/fw1.log' '$T/fw1.out' | grep -q 'symbolic link' && [ -L '$T/fw1.ctl' ]"
fi
# a dangling symlink: nothing may be created where it points
rm -f "$T/fw1.ctl" "$T/fw1.lock"
ln -s "$T/nowhere.sock" "$T/fw1.ctl"
ctd_start fw1 >/dev/null 2>&1 && ctd_stop fw1
WHY="$T/nowhere.sock exists"
check "$N: a dangling symlink at the socket path creates nothing at its target" \
	test ! -e "$T/nowhere.sock"
finish
